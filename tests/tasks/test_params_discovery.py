"""Forms from type hints (tasks.params) and finding @task functions (tasks.discovery)."""

from __future__ import annotations

import datetime as dt
import enum
import importlib
import sys
from pathlib import Path
from typing import Any, Literal, Optional

import pytest
from hypothesis import given
from hypothesis import strategies as st

from taskcache.tasks.discovery import discover
from taskcache.tasks.params import ArgumentError, bind_arguments, describe_params


class Colour(enum.Enum):
    RED = 1
    BLUE = 2


def fit(n: int, alpha: float = 0.1, mode: Literal["fast", "slow"] = "fast",
        verbose: bool = False, colour: Colour = Colour.RED, when: dt.date | None = None,
        path: Path = Path("data.csv"), ids: list[int] = [], names: Optional[list[str]] = None,  # noqa: B006, UP045
        extra: dict = {}, *args: Any, **kwargs: Any) -> None:  # noqa: B006
    """Fit.

    Args:
        n: how many points
        alpha (float): the regularisation
    """


def numpy_doc(k: int) -> None:
    """Numpy style.

    Parameters
    ----------
    k : int
        the number of neighbours
    """


def test_kinds_defaults_and_help() -> None:
    params = {p.name: p for p in describe_params(fit)}
    assert list(params) == ["n", "alpha", "mode", "verbose", "colour", "when", "path", "ids",
                            "names", "extra"]  # *args/**kwargs: no form field
    assert (params["n"].kind, params["n"].required, params["n"].help) == ("int", True, "how many points")
    assert (params["alpha"].kind, params["alpha"].default, params["alpha"].help) == ("float", 0.1, "the regularisation")
    assert (params["mode"].kind, params["mode"].choices) == ("choice", ["fast", "slow"])
    assert (params["colour"].choices, params["colour"].default) == (["RED", "BLUE"], "RED")
    assert (params["when"].kind, params["when"].optional) == ("date", True)
    assert (params["path"].kind, params["path"].default) == ("path", "data.csv")
    assert params["ids"].kind == "list[int]"
    assert (params["names"].kind, params["names"].optional) == ("list[str]", True)
    assert params["extra"].kind == "json"
    assert describe_params(numpy_doc)[0].help == "the number of neighbours"


def test_bind_converts_to_the_annotated_types() -> None:
    bound = bind_arguments(fit, {"n": "3", "mode": "slow", "colour": "BLUE", "when": "2026-01-02",
                                 "path": "x.csv", "ids": [1, 2], "names": None, "extra": {"a": [1]}})
    assert bound == {"n": 3, "mode": "slow", "colour": Colour.BLUE, "when": dt.date(2026, 1, 2),
                     "path": Path("x.csv"), "ids": [1, 2], "names": None, "extra": {"a": [1]}}


@pytest.mark.parametrize(("arguments", "param", "says"), [
    ({}, "n", "missing"),
    ({"n": True}, "n", "integer"),
    ({"n": 1.5}, "n", "integer"),
    ({"n": 1, "alpha": "x"}, "alpha", "number"),
    ({"n": 1, "alpha": float("inf")}, "alpha", "finite"),
    ({"n": 1, "mode": "medium"}, "mode", "'fast', 'slow'"),
    ({"n": 1, "colour": "GREEN"}, "colour", "RED, BLUE"),
    ({"n": 1, "verbose": "maybe"}, "verbose", "true or false"),
    ({"n": 1, "when": "yesterday"}, "when", "ISO date"),
    ({"n": 1, "ids": [1, "x"]}, "ids", "integer"),
    ({"n": 1, "path": None}, "path", "required"),
    ({"n": 1, "bogus": 1}, "bogus", "no such parameter"),
])
def test_bad_values_name_the_parameter(arguments: dict, param: str, says: str) -> None:
    with pytest.raises(ArgumentError) as info:
        bind_arguments(fit, arguments)
    assert info.value.param == param and says in str(info.value)


@given(st.one_of(st.none(), st.booleans(), st.integers(), st.floats(), st.text(),
                 st.lists(st.integers()), st.dictionaries(st.text(), st.integers())))
def test_any_json_value_is_accepted_or_refused_by_name(value: Any) -> None:
    for name in ("n", "alpha", "mode", "verbose", "colour", "when", "path", "ids", "names"):
        try:
            bind_arguments(fit, {"n": 1, name: value})
        except ArgumentError as exc:
            assert exc.param == name


def test_discovery_lists_tasks_and_import_errors(make_module: Any, tmp_path: Path) -> None:
    make_module("tc_disc_steps", """
        from taskcache import task

        @task
        def prepare(path: str, rows: int = 10) -> int:
            return rows

        def plain(x):
            return x
        """)
    (tmp_path / "usercode" / "tc_disc_broken.py").write_text(
        "raise RuntimeError('this module is broken on purpose')\n")
    importlib.invalidate_caches()
    found = discover(["tc_disc_steps", "tc_disc_broken", "tc_no_such_module"], entry_points=False)
    assert list(found.tasks) == ["tc_disc_steps.prepare"]
    assert [p.name for p in found.tasks["tc_disc_steps.prepare"].params] == ["path", "rows"]
    errors = {e.module: e.error for e in found.errors}
    assert "this module is broken on purpose" in errors["tc_disc_broken"]
    assert "No module named 'tc_no_such_module'" in errors["tc_no_such_module"]


def test_discovery_follows_entry_points(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A package declaring ``[taskcache.tasks]`` in its entry points (a real dist-info)."""
    (tmp_path / "tc_ep_pkg.py").write_text(
        "from taskcache import task\n\n@task\ndef from_entry_point(k: int = 1) -> int:\n    return k\n")
    info = tmp_path / "tc_ep_pkg-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: tc-ep-pkg\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[taskcache.tasks]\nsteps = tc_ep_pkg\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    importlib.invalidate_caches()
    try:
        found = discover([], entry_points=True)
        assert "tc_ep_pkg.from_entry_point" in found.tasks
        assert found.tasks["tc_ep_pkg.from_entry_point"].module == "tc_ep_pkg"
    finally:
        sys.modules.pop("tc_ep_pkg", None)
