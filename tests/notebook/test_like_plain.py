"""A ``%%task`` cell leaves the notebook as the plain cell would, on a miss and on a hit.

Each test runs the same cells three times in a real IPython shell, from an empty namespace:
plain, then with ``%%task`` on one cell (a miss), then again (a hit), and compares what a user
sees: every cell's printed and displayed output (``Out[n]: ...`` included), ``Out``, ``_``,
and the content of every variable at the end.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from typing import Any

import pytest
from IPython.core.displaypub import CapturingDisplayPublisher

from taskcache.hashing import hash_value

#: names whose values differ between a plain and a %%task run by construction (the input
#: history holds the "%%task" text) or are IPython's own
NOT_COMPARED = {"In", "_ih", "_dh", "get_ipython", "exit", "quit", "_i", "_ii", "_iii"}


@dataclass
class Session:
    cells: list[tuple[bool, str, str, list[dict[str, Any]]]]  # success, stdout, stderr, displays
    namespace: dict[str, str]  # name -> content hash (or type name when not hashable)
    out: dict[int, str]
    statuses: list[str]


def _content(value: Any) -> str:
    try:
        return hash_value(value)
    except Exception:  # a module or an object without a hasher: compared by type
        return f"<{type(value).__name__}>"


def reset_library_settings() -> None:
    """numpy print options, pandas options and matplotlib rcParams as in a new kernel."""
    import contextvars
    import warnings

    import matplotlib
    import numpy as np
    import pandas as pd

    np.set_printoptions(**contextvars.Context().run(np.get_printoptions))  # the defaults
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd.reset_option("all")
    matplotlib.rc_file_defaults()


@pytest.fixture(autouse=True)
def _fresh_library_settings() -> Any:
    reset_library_settings()
    yield
    reset_library_settings()


class OrderedPublisher(CapturingDisplayPublisher):
    """Also writes a line to ``stream`` (the test's stdout, not whatever ``sys.stdout`` is
    while a cell runs) for each display, so that the order of displays and ``Out[n]: ...``
    lines (which the display hook prints) is compared too."""

    def __init__(self, stream: Any) -> None:
        super().__init__()
        self.stream = stream

    def publish(self, data: dict, metadata: dict | None = None, **kwargs: Any) -> None:
        if "taskcache" not in (metadata or {}):
            print(f"<display {' '.join(sorted(data))}>", file=self.stream)
        super().publish(data, metadata, **kwargs)


def session(ip: Any, capsys: pytest.CaptureFixture[str], cells: list[str]) -> Session:
    """Run ``cells`` one by one in a fresh namespace with history, as a notebook does (a new
    kernel: library settings are reset too)."""
    reset_library_settings()
    ip.reset(new_session=True)  # execution count 1, empty Out
    ip.display_pub = OrderedPublisher(sys.stdout)
    ip.display_pub.outputs.clear()
    capsys.readouterr()
    seen, statuses = [], []
    for cell in cells:
        ok = ip.run_cell(cell, store_history=True).success
        captured = capsys.readouterr()
        shown = [o["data"] for o in ip.display_pub.outputs if "taskcache" not in o["metadata"]]
        statuses += [o["data"]["text/plain"] for o in ip.display_pub.outputs if "taskcache" in o["metadata"]]
        ip.display_pub.outputs.clear()
        seen.append((ok, captured.out, captured.err, shown))
    hidden = set(ip.user_ns_hidden) - {"_", "__", "___"}
    namespace = {
        name: _content(value) for name, value in ip.user_ns.items()
        if name not in hidden and name not in NOT_COMPARED and not name.startswith("_i")
    }
    out = {n: _content(v) for n, v in ip.user_ns["Out"].items()}
    return Session(seen, namespace, out, statuses)


def plain_miss_hit(ip: Any, capsys: pytest.CaptureFixture[str], cells: list[str], task: int,
                   line: str = "t") -> tuple[Session, Session, Session]:
    """The cells run plain, then with ``%%task line`` on cell ``task`` twice; asserts that
    the second is a miss and the third a hit, and that all three look the same."""
    plain = session(ip, capsys, cells)
    wrapped = list(cells)
    wrapped[task] = f"%%task {line}\n{cells[task]}"
    miss = session(ip, capsys, wrapped)
    hit = session(ip, capsys, wrapped)
    name = line.split()[0]
    assert [s.split(" #")[0] for s in miss.statuses] == [f"taskcache: miss {name}"]
    assert [s.split(" #")[0] for s in hit.statuses] == [f"taskcache: hit {name}"]
    for other in (miss, hit):
        assert other.cells == plain.cells
        assert other.out == plain.out
        assert other.namespace == plain.namespace
    return plain, miss, hit


# -- display rules ---------------------------------------------------------------------------

def test_a_trailing_semicolon_hides_the_result(ip, capsys):
    cells = ["def fit(v):\n    print('fitting')\n    return [v] * 3",
             "model = fit(2)\nmodel;",
             "fit(1);  # a comment after it"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
    assert plain.cells[1][1] == "fitting\n"  # printed, but no Out[2]
    assert plain.out == {}
    assert session(ip, capsys, [cells[0], f"%%task t\n{cells[2]}"]).cells[1][1] == "fitting\n"


def test_the_same_cell_without_the_semicolon_is_another_run(ip, capsys):
    ip.user_ns["x"] = 4
    assert ip.run_cell("%%task t\nx * 2;").result is None
    assert ip.run_cell("%%task t\nx * 2").result == 8  # not the silenced run's nothing
    assert ip.run_cell("%%task t\nx * 2").result == 8


def test_results_land_in_out_and_the_underscore_history(ip, capsys):
    cells = ["a = 20", "a + 1", "print('shown')\na * 2", "[_, __, Out[2], _2]"]
    plain_miss_hit(ip, capsys, cells, task=2)


def test_a_cell_reading_the_output_history_has_it_as_an_input(ip, capsys):
    ip.run_cell("5", store_history=True)
    ip.run_cell("%%task t\ny = _ * 2", store_history=True)
    assert ip.user_ns["y"] == 10
    ip.run_cell("7", store_history=True)
    ip.run_cell("%%task t\ny = _ * 2", store_history=True)
    assert ip.user_ns["y"] == 14  # not the cached 10


# -- namespace effects -----------------------------------------------------------------------

def test_star_import_names_are_there_after_a_hit(ip, capsys):
    cells = ["%%capture\n", "from math import *\nroot = sqrt(16)", "print(floor(pi), root)"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
    assert hit.cells[2][0] and hit.cells[2][1] == "3 4.0\n"


def test_del_in_a_cell_is_replayed_on_a_hit(ip, capsys):
    cells = ["raw = [3, 1, 2]\ntmp = 5", "clean = sorted(raw)\ndel raw\ndel tmp",
             "print('raw' in dir(), 'tmp' in dir(), clean)"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
    assert hit.cells[2][1] == "False False [1, 2, 3]\n"


def test_top_level_await_runs_as_ipython_runs_it(ip, capsys):
    cells = ["import asyncio\nasync def double(v):\n    await asyncio.sleep(0.01)\n    return 2 * v",
             "y = await double(4)\nprint('y is', y)\nawait double(y)",
             "y"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
    assert plain.cells[1][1] == "y is 8\nOut[2]: 16\n"


def test_a_failing_awaited_cell_shows_the_users_traceback(ip, capsys):
    ip.run_cell("import asyncio")
    result = ip.run_cell("%%task t\nawait asyncio.sleep(0)\nraise ValueError('bad input')")
    assert not result.success and isinstance(result.error_in_exec, ValueError)
    out = capsys.readouterr().out
    assert "raise ValueError('bad input')" in out and "taskcache" not in out


# -- !cmd interpolation ------------------------------------------------------------------------

def test_names_interpolated_into_a_shell_command_are_inputs(ip, capsys):
    ip.user_ns.update(who="ann", n=1)
    ip.run_cell("%%task t\nout = !echo hello $who {n + 1}")
    assert list(ip.user_ns["out"]) == ["hello ann 2"]
    ip.user_ns["who"] = "bob"
    ip.run_cell("%%task t\nout = !echo hello $who {n + 1}")
    assert list(ip.user_ns["out"]) == ["hello bob 2"]
    ip.user_ns["n"] = 5
    ip.run_cell("%%task t\nout = !echo hello $who {n + 1}")
    assert list(ip.user_ns["out"]) == ["hello bob 6"]
    ip.run_cell("%%task t\nout = !echo hello $who {n + 1}")
    assert "hit t" in ip.display_pub.outputs[-1]["data"]["text/plain"]


# -- views and objects changed in place ------------------------------------------------------

NUMPY = "import numpy as np\nimport pandas as pd\n"


def test_a_view_of_an_input_written_through_changes_the_input_on_a_hit_too(ip, capsys):
    # from a teaching notebook: the window is written, the array it views changes with it
    cells = [NUMPY + "x2 = np.arange(16.).reshape(4, 4)",
             "sub = x2[:2, :2]\nsub[0, 0] = 99",
             "sub[1, 1] = -1  # later cells still write through the view\n"
             "print(x2[:2, :2].tolist(), np.shares_memory(sub, x2))"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
    assert plain.cells[2][1] == "[[99.0, 1.0], [4.0, -1.0]] True\n"


def test_a_view_of_an_unchanged_input_is_a_view_after_a_hit(ip, capsys):
    cells = [NUMPY + "x = np.arange(10)", "evens = x[::2]\ntotal = int(evens.sum())",
             "x[0] = 100\nprint(evens[0], evens.base is not None, np.shares_memory(evens, x))"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
    assert hit.cells[2][1] == "100 True True\n"


def test_views_of_outputs_and_chains_of_views(ip, capsys):
    cells = [NUMPY + "a = np.arange(6.)",
             "b = a.reshape(2, 3)\nc = b[:, ::-2]\nd = np.zeros(5)\ne = d[1:4]\nf = e[::2]\n"
             "t = np.zeros((3, 4)).T\ng = t[1:, 0]",
             "c[0, 0] = 100\nf[1] = 7\ng[0] = 5\n"
             "print(a.tolist(), d.tolist(), t[1, 0], np.shares_memory(f, d), np.shares_memory(g, t))"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
    assert hit.cells[2][1] == "[0.0, 1.0, 100.0, 3.0, 4.0, 5.0] [0.0, 0.0, 0.0, 7.0, 0.0] 5.0 True True\n"


def test_an_input_changed_in_place_changes_for_every_name_holding_it(ip, capsys):
    cells = [NUMPY + "items = [1, 2]\nsame_items = items\ndf = pd.DataFrame({'a': [1, 2]})\nsame_df = df\n"
             "arr = np.zeros(3)\nsame_arr = arr",
             "items.append(3)\nitems += [4]\ndf['b'] = df['a'] * 10\narr += 1",
             "print(same_items, list(same_df.columns), same_arr.tolist(), same_df is df)"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
    assert hit.cells[2][1] == "[1, 2, 3, 4] ['a', 'b'] [1.0, 1.0, 1.0] True\n"


def test_a_series_over_a_numpy_array_still_shares_it(ip, capsys):
    cells = [NUMPY + "a = np.arange(4.)", "s = pd.Series(a, copy=False, name='s')\nfresh = pd.Series(a)",
             "a[0] = 50\nprint(s.iloc[0], fresh.iloc[0], s.name)"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
    assert hit.cells[2][1] == "50.0 0.0 s\n"


def test_sharing_a_hit_cannot_rebuild_is_not_cached_and_says_so(ip, capsys):
    cells = [NUMPY + "a = np.arange(4.)", "%%task t\ndf = pd.DataFrame(a.reshape(2, 2), copy=False)",
             "a[0] = 50\nprint(df.iloc[0, 0])"]
    for _ in range(2):  # computed every time, never restored with the sharing lost
        run = session(ip, capsys, cells)
        assert run.cells[1][2].startswith("taskcache: t ran but was not cached: df shares memory with a")
        assert run.cells[2][1] == "50.0\n"
        assert "not cached" in run.statuses[0]


def test_an_anchor_in_another_layout_runs_the_cell_instead_of_a_wrong_view(ip, capsys):
    ip.run_cell(NUMPY + "x = np.arange(12.).reshape(3, 4)")
    ip.run_cell("%%task t\nrow = x[1]")
    # same content (same key), other memory layout: the recorded window does not fit
    ip.run_cell("x = np.asfortranarray(x)")
    ip.run_cell("%%task t\nrow = x[1]")
    assert ip.display_pub.outputs[-1]["data"]["text/plain"].startswith("taskcache: miss t #2")
    ns = ip.user_ns
    assert np_shares(ns["row"], ns["x"]) and ns["row"].tolist() == [4.0, 5.0, 6.0, 7.0]


def np_shares(a: Any, b: Any) -> bool:
    import numpy as np

    return bool(np.shares_memory(a, b))


# -- library settings --------------------------------------------------------------------------

def test_library_settings_a_cell_changes_are_set_again_on_a_hit(ip, capsys):
    # the first cell of every chapter of a real book: later cells print with these settings
    cells = ["import numpy as np\nimport pandas as pd\nimport matplotlib\n"
             "np.set_printoptions(precision=4, suppress=True)\npd.options.display.max_rows = 7\n"
             "matplotlib.rc('figure', figsize=(10, 6))",
             "np.array([1.23456789, 2.0])",
             "print(pd.get_option('display.max_rows'), list(matplotlib.rcParams['figure.figsize']))"]
    plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=0)
    assert "Out[2]: array([1.2346, 2.    ])" in hit.cells[1][1]
    assert hit.cells[2][1] == "7 [10.0, 6.0]\n"


# -- global random generators ------------------------------------------------------------------

def test_seeding_and_drawing_leave_the_generators_as_a_real_run(ip, capsys):
    cells = ["import numpy as np\nimport random\nnp.random.seed(12345)\nrandom.seed(7)",
             "samples = np.random.standard_normal(3)\npick = random.randint(0, 10 ** 9)",
             "print(np.random.standard_normal(2).tolist(), random.randint(0, 10 ** 9))"]
    plain_miss_hit(ip, capsys, cells, task=0)  # the seeding cell
    plain = session(ip, capsys, cells)
    wrapped = [cells[0], "%%task draw\n" + cells[1], cells[2]]
    for run in ("miss", "hit"):
        again = session(ip, capsys, wrapped)
        assert again.cells == plain.cells and again.namespace == plain.namespace
        assert again.statuses[0].startswith(f"taskcache: {run} draw #")


def test_a_draw_from_a_generator_in_another_state_is_not_served(ip, capsys):
    ip.run_cell("import numpy as np\nnp.random.seed(1)")
    ip.run_cell("%%task draw\nx = np.random.standard_normal()")
    first = ip.user_ns["x"]
    ip.run_cell("np.random.seed(2)")
    ip.run_cell("%%task draw\nx = np.random.standard_normal()")
    assert ip.user_ns["x"] != first
    assert ip.user_ns["x"] == __import__("numpy").random.RandomState(2).standard_normal()
    ip.run_cell("np.random.seed(1)")
    ip.run_cell("%%task draw\nx = np.random.standard_normal()")
    assert ip.user_ns["x"] == first


# -- figures -----------------------------------------------------------------------------------

def test_figures_left_open_are_shown_after_the_result_as_the_inline_backend_does(ip, capsys):
    # what %matplotlib inline does in a kernel (a bare shell has no GUI loop to enable)
    inline = "module://matplotlib_inline.backend_inline"
    cells = ["import matplotlib.pyplot as plt\n"
             "from matplotlib_inline.backend_inline import configure_inline_support\n"
             f"plt.switch_backend({inline!r})\nconfigure_inline_support(get_ipython(), {inline!r})\n"
             "plt.ion();",
             "print('plotting')\nplt.figure()\nplt.plot([1, 3, 2])\nplt.title('t')",
             "fig = plt.figure()\nplt.plot([1, 2])\nplt.show()\nlen('shown before the result')"]
    try:
        plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=1)
        lines = plain.cells[1][1].splitlines()
        assert lines[0] == "plotting" and lines[1].startswith("Out[2]: Text(")
        assert lines[2] == "<display image/png text/plain>"
        plain, miss, hit = plain_miss_hit(ip, capsys, cells, task=2, line="t2")
        assert plain.cells[2][1].splitlines()[-2:] == ["<display image/png text/plain>", "Out[3]: 23"]
    finally:
        from matplotlib_inline.backend_inline import flush_figures

        ip.run_cell("plt.close('all')\nplt.ioff()\nplt.switch_backend('agg')")
        if flush_figures in ip.events.callbacks["post_execute"]:
            ip.events.unregister("post_execute", flush_figures)
