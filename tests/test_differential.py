"""Issue 12's differential harness (tools/differential.py) on the notebooks in tests/data/corpus/.

Each notebook runs plain (twice, to set nondeterministic cells aside) and wrapped cell by cell in
``%%task`` cold, warm and warm again, in fresh kernels; the targets say a wrapped notebook
must read, compute and write exactly as the plain one. The full report (which cell, which
output, plain vs wrapped excerpts) is written to tests/artifacts/differential.txt and .json.

The first tests check the harness itself (fast, no kernel); then the targets: no cell that works plain
fails wrapped (a plain test); cells identical and namespace and files as plain (pass on the
full corpus, xfail here only for two nondeterministic cells, see NONDETERMINISTIC); the two
hit rates among the cells the cold run cached (xfail by design, see NOT_HITS), and, as a plain
test, that the cells drawing from the unseeded `random` are the only ones that miss.
"""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
CORPUS = Path(__file__).resolve().parent / "data" / "corpus"
ARTIFACTS = Path(__file__).resolve().parent / "artifacts"


def _load_harness() -> Any:
    spec = importlib.util.spec_from_file_location("differential", ROOT / "tools" / "differential.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["differential"] = module  # dataclasses look their module up by name
    spec.loader.exec_module(module)
    return module


differential = _load_harness()


# -- the harness's own rules (no kernel) ------------------------------------------------------

@pytest.mark.parametrize(("source", "wrapped"), [
    ("x = 1", True),
    ("!cat examples/ex1.csv\ndf = pd.read_csv('examples/ex1.csv')", True),
    ("%matplotlib inline\nplt.plot([1, 2])", True),
    ("%%time\nx = 1", False),
    ("!rm some_array.npy\n!rm array_archive.npz", False),
    ("%timeit f()\n# a comment\n", False),
    ("", False),
])
def test_which_cells_are_wrapped(source: str, wrapped: bool) -> None:
    assert differential.wrappable(source) is wrapped


def test_status_lines_are_removed_and_parsed() -> None:
    outputs = [
        {"output_type": "stream", "name": "stdout", "text": "5\n"},
        {"output_type": "display_data", "metadata": {"taskcache": {"status": "hit"}},
         "data": {"text/plain": "taskcache: hit cell_3 #12 (saved 1.2 s)"}},
        {"output_type": "execute_result", "execution_count": 4, "metadata": {},
         "data": {"text/plain": "<object at 0x7f3a2b>", "text/html": "<b>x</b>"}},
    ]
    seen = differential.comparable(outputs)
    assert seen.status == "hit" and seen.error is None and seen.reason is None
    assert seen.outputs == [["stdout", "5\n"], ["execute_result", ["text/html"], "<object at 0x<ADDR>>"]]
    stream_status = [{"output_type": "stream", "name": "stderr",
                      "text": "taskcache: cell_7 ran in 3 ms, not cached\nwarning\n"}]
    seen = differential.comparable(stream_status)
    assert seen.status == "not cached" and seen.outputs == [["stderr", "warning\n"]]


def test_why_a_cell_was_not_cached_is_kept_as_taskcache_said_it() -> None:
    why = "cannot hash 'frame' of type pandas.io.parsers.readers.TextFileReader (it cannot be pickled)"
    status_line = {"output_type": "display_data", "metadata": {"taskcache": {"status": "not cached"}},
                   "data": {"text/plain": f"taskcache: cell_18 ran in 4 ms, not cached: {why}"}}
    seen = differential.comparable([status_line])
    assert (seen.status, seen.reason, seen.outputs) == ("not cached", why, [])
    # the aliasing case: the reason on stderr, then a status line without one
    aliasing = [{"output_type": "stream", "name": "stderr",
                 "text": "taskcache: t ran but was not cached: df shares memory with a; copy it\n"},
                {**status_line, "data": {"text/plain": "taskcache: t ran in 2 ms, not cached"}}]
    seen = differential.comparable(aliasing)
    assert (seen.status, seen.reason, seen.outputs) == ("not cached", "df shares memory with a; copy it", [])


def test_the_hit_rates_count_only_the_cells_the_cold_run_cached() -> None:
    """Cell 1 is cached and hits; cell 2 holds an open file (not cached, runs every time);
    cell 3 shows no status on cold (counted, as a non-hit): 1 hit of 2 cached cells."""
    nb = differential.nbformat.v4.new_notebook()
    nb.cells = [differential.nbformat.v4.new_code_cell(src) for src in
                ("%precision 3", "x = 1", "f = open('a.txt')", "y = x + 1")]
    cells = [0, 1, 2, 3]

    def run(name: str, statuses: list[str | None]) -> Any:
        result = differential.RunResult(name)
        for i, status in zip(cells, statuses, strict=True):
            reason = "cannot store 'f' of type _io.TextIOWrapper" if status == "not cached" else None
            result.cells[i] = differential.CellResult(status=status, reason=reason)
        return result

    runs = {"plain": run("plain", [None] * 4),
            "cold": run("cold", [None, "miss", "not cached", None]),
            "warm1": run("warm1", [None, "hit", "not cached", "miss"]),
            "warm2": run("warm2", [None, "hit", "not cached", "hit"])}
    report = differential.compare("nb.ipynb", nb, cells, runs)
    assert report.wrapped_cells == [1, 2, 3] and report.cached_cells == [1, 3]
    assert report.not_cached == {2: "cannot store 'f' of type _io.TextIOWrapper"}
    hits = {t.name.split(" among")[0]: t.detail for t in differential.targets([report])}
    assert hits["hits on warm1"] == "1/2" and hits["hits on warm2"] == "2/2"
    text = differential.format_report([report])
    assert "cell 2: cannot store 'f' of type _io.TextIOWrapper" in text
    assert "not a hit on warm1: 3:miss" in text
    assert differential.json_report([report])["not_cached"] == [
        {"notebook": "nb.ipynb", "cell": 2, "reason": "cannot store 'f' of type _io.TextIOWrapper"}]


def test_differences_name_the_output_and_show_both_sides() -> None:
    plain = [["stdout", "a\nb\n"]]
    wrapped = [["stdout", "a\nc\n"], ["execute_result", [], "Text(0.5, 0, 'n')"]]
    lines = differential.describe(plain, wrapped)
    assert any(line.startswith("execute_result only in wrapped") for line in lines)
    assert any("stdout differs" in line and "'a⏎b⏎'" in line and "'a⏎c⏎'" in line for line in lines)
    assert differential.hint("plt.ylabel('n');", [], wrapped) == "trailing ';' not honoured"


def test_timeit_is_measured_once_when_quick() -> None:
    source = "x = 1\n%timeit f(x)\n  %timeit -o g()"
    assert differential.quick_timeit(source) == "x = 1\n%timeit -n1 -r1 f(x)\n  %timeit -n1 -r1 -o g()"
    assert differential.quick_timeit("%%timeit\nf()") == "%%timeit -n1 -r1\nf()"


def test_bound_names_point_at_the_cell() -> None:
    names = differential.bound_names("import numpy as np\nx, y = 1, 2\n!ls\ndef f(): pass")
    assert {"np", "x", "y", "f"} <= names


# -- the corpus ---------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def reports(tmp_path_factory: pytest.TempPathFactory) -> list[Any]:
    """Every vendored notebook, 5 runs each (about a minute and a half in all)."""
    found = differential.run_paths([CORPUS], tmp_path_factory.mktemp("differential"), quick=True,
                                   cell_timeout=120, notebook_timeout=240)
    ARTIFACTS.mkdir(exist_ok=True)
    (ARTIFACTS / "differential.txt").write_text(differential.format_report(found))
    (ARTIFACTS / "differential.json").write_text(json.dumps(differential.json_report(found), indent=1,
                                                             ensure_ascii=False))
    return found


def _target(reports: list[Any], name: str) -> Any:
    return next(t for t in differential.targets(reports) if t.name.startswith(name))


def test_the_harness_runs_the_corpus(reports: list[Any]) -> None:
    """Not a taskcache target: every run finished and the plain runs are usable as reference."""
    assert {Path(r.notebook).name for r in reports} == {"ch04.ipynb", "ch06.ipynb"}
    for r in reports:
        assert not r.aborted, r.aborted
        assert len(r.counted) >= 0.6 * r.cells_total, differential.format_report([r])
        assert r.cached_cells, "no cell was wrapped"


# The two hit-rate targets still fail here, by design (cell = index into nb.cells; details in
# the report): cells drawing from Python's unseeded `random` (ch04 cells 60, 101, and 103
# which plots that walk) miss, since the generator is never where the stored run found it: a
# hit there would be wrong. That is 3 of the 142 cells the cold run caches: 97.9 %. (Cells
# holding values that cannot be stored or hashed -- an open file and its csv.reader, ch06
# 28-29; a TextFileReader, 18-19; a sqlite3 connection and cursor, a SQLAlchemy engine, 67-71;
# an NpzFile, ch04 94 -- run uncached with one status line and are not in the rates.)
#: the cells that miss on every warm run, by design (see above)
RANDOM_DRAWS = {"ch04.ipynb": {60, 101, 103}}
#: nondeterministic cells the two plain runs do not always catch: np.empty() shows uninitialised
#: memory (ch04 cell 10), and `step` comes from Python's unseeded `random` (ch04 cell 101)
NONDETERMINISTIC = ("ch04 cell 10 shows np.empty()'s uninitialised memory and cell 101 binds `step` "
                    "from the unseeded `random`: they differ from plain unless the two plain runs "
                    "happened to disagree")
NOT_HITS = "by design: cells drawing from the unseeded `random` (ch04 60, 101, 103) miss"


@pytest.mark.xfail(strict=False, reason=NONDETERMINISTIC)
def test_cells_identical_cold_and_warm(reports: list[Any]) -> None:
    target = _target(reports, "cells identical")
    assert target.passed, f"{target.value:.1f} % ({target.detail})\n" + differential.format_report(reports)


def test_no_cell_that_works_plain_fails_wrapped(reports: list[Any]) -> None:
    target = _target(reports, "cells that work plain")
    assert target.passed, f"{target.detail} cells\n" + differential.format_report(reports)


@pytest.mark.xfail(strict=False, reason=NOT_HITS)
def test_hits_on_the_first_warm_run(reports: list[Any]) -> None:
    target = _target(reports, "hits on warm1")
    assert target.passed, f"{target.value:.1f} % ({target.detail})\n" + differential.format_report(reports)


@pytest.mark.xfail(strict=False, reason=NOT_HITS)
def test_hits_on_the_second_warm_run(reports: list[Any]) -> None:
    target = _target(reports, "hits on warm2")
    assert target.passed, f"{target.value:.1f} % ({target.detail})\n" + differential.format_report(reports)


def test_only_the_cells_drawing_from_unseeded_random_miss_when_warm(reports: list[Any]) -> None:
    """Every cell the cold run cached hits on warm1 and warm2, but the RANDOM_DRAWS."""
    for r in reports:
        allowed = RANDOM_DRAWS.get(Path(r.notebook).name, set())
        for run in ("warm1", "warm2"):
            missed = {i for i in r.cached_cells if r.statuses[run][i] != "hit"}
            assert missed <= allowed, f"{r.notebook} {run}: {sorted(missed - allowed)}\n" + \
                differential.format_report([r])


@pytest.mark.xfail(strict=False, reason=NONDETERMINISTIC)
def test_namespace_and_files_as_plain(reports: list[Any]) -> None:
    diffs = {Path(r.notebook).name: (r.namespace_diffs, r.file_diffs) for r in reports
             if r.namespace_diffs or r.file_diffs}
    assert not diffs, differential.format_report(reports)
