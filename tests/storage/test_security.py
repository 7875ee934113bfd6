"""Hostile input through the public API: query filters are values, never SQL or patterns;
task names from users never lead a file outside the store root."""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

import taskcache as tc
from taskcache.lifecycle.runner import get_runner

TASKS = ["task", "tank", "x' OR 1=1 --", "100%", "a_c", "a\x00b"]
TAGS = ["exp", "x' OR 1=1 --", "50%", "t_g"]

INJECTIONS = [
    "x' OR 1=1 --", "' OR '1'='1", "x\"; DROP TABLE runs; --", "'; DELETE FROM runs; --",
    "' UNION SELECT * FROM runs --", "%", "_", "%%", "t%", "ta_k", "%'--", "\x00", "a\x00",
    "task\x00", "\x00' OR 1=1 --", "100", "a%c", "e%", "t\\_g", "*", "completed' --",
]


@pytest.fixture
def catalog_with_odd_names(make_module):
    mod = make_module("m_odd", "import taskcache as tc\n")
    for i, name in enumerate(TASKS):
        tc.task(name=name, tags=[TAGS[i % len(TAGS)]])(lambda x: x + 1)(i)
    with pytest.raises(ZeroDivisionError):
        tc.task(name="fails")(lambda x: x / 0)(1)
    return mod


def _tables(db: Path) -> list[str]:
    with sqlite3.connect(db) as con:
        return sorted(r[0] for r in con.execute("SELECT name FROM sqlite_master WHERE type='table'"))


def test_query_filters_match_exactly_and_never_run_sql(catalog_with_odd_names, cache_dir):
    db = cache_dir / "catalog.db"
    tables = _tables(db)
    everything = tc.runs()
    assert len(everything) == len(TASKS) + 1
    for value in INJECTIONS:
        for key, column in (("task", "task"), ("status", "status"), ("tag", "tags")):
            found = tc.runs(**{key: value})  # no error, whatever the value
            if key == "tag":
                wanted = [i for i, tags in everything["tags"].items() if value in tags.split(",")]
            else:
                wanted = list(everything.index[everything[column] == value])
            assert sorted(found.index) == sorted(wanted), (key, value)
    assert _tables(db) == tables and len(tc.runs()) == len(TASKS) + 1
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)


def test_names_with_quotes_percent_underscore_and_nul_find_only_themselves(
    catalog_with_odd_names,
):
    for name in TASKS:
        found = tc.runs(task=name)
        assert list(found["task"]) == [name], name
    assert tc.runs(task="x' OR 1=1 --")["tags"].tolist() == ["50%"]
    assert sorted(tc.runs(tag="x' OR 1=1 --")["task"]) == ["a\x00b", "tank"]  # exactly those
    assert tc.runs(task="ta_k").empty and tc.runs(task="%").empty and tc.runs(task="a_").empty
    assert tc.runs(task="a\x00").empty and tc.runs(task="a").empty  # NUL is not an end
    assert tc.runs(tag="t_g")["task"].tolist() == ["100%"] and tc.runs(tag="tag").empty
    assert tc.runs(tag="50%")["task"].tolist() == ["x' OR 1=1 --"] and tc.runs(tag="5%").empty
    assert tc.runs(status="failed")["task"].tolist() == ["fails"]
    assert tc.runs(status="fail%").empty and tc.runs(status="_ompleted").empty


HOSTILE_NAMES = ["/etc/passwd", "../../../outside", "..", ".", "a/../../b", "~root/x",
                 "C:\\Windows\\evil", "a\x00b", "\x00", "x" * 10_000, "../" * 200 + "etc"]


def _files_outside(tmp_path: Path, allowed: list[Path]) -> list[Path]:
    return [p for p in tmp_path.rglob("*")
            if p.is_file() and not any(p.is_relative_to(a) for a in allowed)]


def _assert_inside_store(name: str) -> None:
    store = get_runner().store
    (run_id,) = tc.runs(task=name).index
    for artifact in tc.run(run_id).artifacts:
        path = store.path_of(artifact.relpath)
        assert path.resolve().is_relative_to(store.root.resolve()), (name[:50], path)
        assert len(os.path.basename(path)) < 255


def test_hostile_task_names_of_functions_stay_inside_the_store(make_module, tmp_path, cache_dir):
    make_module("m_hostile", "import taskcache as tc\n")
    for i, name in enumerate(HOSTILE_NAMES):
        fn = tc.task(name=name)(lambda x: [x] * 3)
        assert fn(i) == [i] * 3
        assert fn(i) == [i] * 3  # a hit reads back from inside the store
        _assert_inside_store(name)
    assert _files_outside(tmp_path, [cache_dir, tmp_path / "usercode"]) == []
    assert not Path("/etc/passwd.json").exists()


def test_hostile_task_names_of_cells_stay_inside_the_store(cache_dir, tmp_path):
    shell = InteractiveShell.instance()
    shell.reset(new_session=False)
    shell.display_pub = CapturingDisplayPublisher()
    shell.run_line_magic("load_ext", "taskcache")
    try:
        # the name as typed on the %%task line (IPython keeps quotes, so none here)
        for i, name in enumerate(n for n in HOSTILE_NAMES if "\x00" not in n):
            shell.user_ns["i"] = i
            shell.run_cell_magic("task", f"{name} -q", "out = i * 2")
            assert shell.user_ns["out"] == i * 2
            _assert_inside_store(name)
    finally:
        shell.run_line_magic("unload_ext", "taskcache")
    assert _files_outside(tmp_path, [cache_dir]) == []


def test_a_text_filter_with_a_nul_matches_only_names_that_have_it(catalog_with_odd_names):
    """Issue 13: LIKE stops at a NUL, so the browser's text filter "\\x00" matched every run."""
    runner = get_runner()
    total = len(tc.runs())
    for text, expected in (("\x00", ["a\x00b"]), ("a\x00b", ["a\x00b"]), ("\x00c", []),
                           ("b\x00", [])):
        found = [r.task for r in runner.catalog.query_runs(text=text)]
        assert found == expected, text
        assert runner.catalog.count_runs(text=text) == len(expected) < total
    assert [r.task for r in runner.catalog.query_runs(text="a_c")] == ["a_c"]  # LIKE still
