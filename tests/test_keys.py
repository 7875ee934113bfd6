"""What the key of a run is made of, end to end: real @task modules, real IPython shells, real
module files edited on disk, real subprocesses for what a restarted kernel sees."""

from __future__ import annotations

import datetime as dt
import importlib
import json
import os
import subprocess
import sys
import textwrap
import zoneinfo
from pathlib import Path


def statuses(ip) -> list[str]:
    return [o["data"]["text/plain"] for o in ip.display_pub.outputs if "taskcache" in o["metadata"]]


def last_status(ip) -> str:
    return statuses(ip)[-1]


def run_script(source: str, cache: Path, *paths: Path) -> str:
    """Run ``source`` in a fresh Python process (a restarted kernel) on the same cache."""
    env = {**os.environ, "TASKCACHE_DIR": str(cache), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join([*map(str, paths), *sys.path])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(source)], env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    return done.stdout


# --------------------------------------------------------------------------- dict order


def test_dict_order_is_part_of_the_key(make_module):
    mod = make_module("k_dict_order", """
        import pandas as pd
        import taskcache as tc

        @tc.task
        def make(cols):
            return list(pd.DataFrame(cols).columns)
    """)
    assert mod.make({"a": [1], "b": [2]}) == ["a", "b"]
    assert mod.make({"b": [2], "a": [1]}) == ["b", "a"]  # was ['a', 'b'] from the first run
    assert mod.make({"a": [1], "b": [2]}) == ["a", "b"]
    assert len(mod.make.runs()) == 2


def test_keyword_order_binds_parameters_but_var_keyword_order_is_content(make_module):
    mod = make_module("k_kwargs", """
        import taskcache as tc
        CALLS = []

        @tc.task
        def pair(a, b):
            CALLS.append((a, b))
            return [a, b]

        @tc.task
        def names(**kw):
            CALLS.append(tuple(kw))
            return list(kw)
    """)
    assert mod.pair(a=1, b=2) == mod.pair(b=2, a=1) == mod.pair(1, 2) == [1, 2]
    assert mod.CALLS == [(1, 2)]  # one parameter binding, one run
    assert mod.names(a=1, b=2) == ["a", "b"]
    assert mod.names(b=2, a=1) == ["b", "a"]  # the function sees the order it was called with
    assert mod.names(**{"a": 1, "b": 2}) == ["a", "b"]
    assert mod.CALLS == [(1, 2), ("a", "b"), ("b", "a")]


def test_dict_order_in_a_cell(ip):
    ip.run_cell("import pandas as pd\ncols = {'a': [1], 'b': [2]}")
    cell = "%%task frame\ncolumns = list(pd.DataFrame(cols).columns)"
    ip.run_cell(cell)
    ip.run_cell("cols = {'b': [2], 'a': [1]}")
    ip.run_cell(cell)
    assert "miss frame" in last_status(ip) and ip.user_ns["columns"] == ["b", "a"]


# --------------------------------------------------------------------------- time zones


def test_a_fixed_offset_and_a_zone_of_the_same_name_are_two_keys(make_module):
    mod = make_module("k_tz", """
        import datetime as dt
        import taskcache as tc

        @tc.task
        def offset_in_half_a_year(when):
            return str((when + dt.timedelta(days=182)).utcoffset())
    """)
    fixed = dt.datetime(2024, 1, 1, 12, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET"))
    zone = dt.datetime(2024, 1, 1, 12, tzinfo=zoneinfo.ZoneInfo("CET"))
    assert fixed == zone  # the same instant...
    assert mod.offset_in_half_a_year(fixed) == "1:00:00"
    assert mod.offset_in_half_a_year(zone) == "2:00:00"  # ...but not the same value
    assert len(mod.offset_in_half_a_year.runs()) == 2


# --------------------------------------------------------------------------- user modules


def test_a_module_attribute_changed_at_run_time_is_part_of_the_key(make_module):
    make_module("cfgmod", "alpha = 1\nname = 'base'\n")
    mod = make_module("k_cfg_reader", """
        import cfgmod
        import taskcache as tc
        CALLS = []

        @tc.task
        def scaled(x):
            CALLS.append(x)
            return x * cfgmod.alpha
    """)
    assert mod.scaled(3) == 3
    assert mod.scaled(3) == 3 and mod.CALLS == [3]
    mod.cfgmod.alpha = 7
    assert mod.scaled(3) == 21  # was 3, the first run's result
    mod.cfgmod.name = "renamed"  # an attribute the function does not read
    assert mod.scaled(3) == 21 and mod.CALLS == [3, 3]
    mod.cfgmod.alpha = 1
    assert mod.scaled(3) == 3 and mod.CALLS == [3, 3]  # back to the first run


def test_a_module_attribute_read_by_a_cell_or_its_helper_is_part_of_the_key(ip, make_module):
    cfg = make_module("cfgcell", "alpha = 1\n")
    ip.user_ns["cfgcell"] = cfg
    ip.user_ns["x"] = 2
    ip.run_cell("def times_alpha(v):\n    return v * cfgcell.alpha")
    direct, helper = "%%task direct\ny = x * cfgcell.alpha", "%%task helper\nz = times_alpha(x)"
    ip.run_cell(direct)
    ip.run_cell(helper)
    ip.run_cell("cfgcell.alpha = 7")
    ip.run_cell(direct)
    assert "miss direct" in last_status(ip) and ip.user_ns["y"] == 14
    ip.run_cell(helper)
    assert "miss helper" in last_status(ip) and ip.user_ns["z"] == 14


def test_only_the_attributes_read_count_so_others_may_be_anything(ip, make_module):
    """A module holding a lock (unhashable) and a big table: a cell reading ``cfg.alpha``
    keys on alpha alone."""
    cfg = make_module("cfglock", """
        import threading
        alpha = 1
        lock = threading.Lock()
        table = list(range(10))
    """)
    ip.user_ns["cfglock"] = cfg
    cell = "%%task reads_alpha\ny = cfglock.alpha + 1"
    assert ip.run_cell(cell).success and "miss reads_alpha" in last_status(ip)
    cfg.table.append(10)  # not read by the cell
    ip.run_cell(cell)
    assert "hit reads_alpha" in last_status(ip) and ip.user_ns["y"] == 2
    cfg.alpha = 5
    ip.run_cell(cell)
    assert "miss reads_alpha" in last_status(ip) and ip.user_ns["y"] == 6
    # a cell that passes the module on may read anything from it: all of it counts, and
    # what cannot be hashed is named, with the way out; the cell still runs, uncached
    result = ip.run_cell("%%task passes_it\nname = getattr(cfglock, 'alpha')")
    status = last_status(ip)
    assert result.success and ip.user_ns["name"] == 5
    assert "not cached" in status and "at cfglock.lock" in status and "--ignore cfglock" in status


HELPERS_V1 = "def scale(x):\n    return x * 2\n"
HELPERS_V2 = "def scale(x):\n    return x * 30\n"
TASKS = """
import helpers_disk
import taskcache as tc

@tc.task
def compute(x):
    return helpers_disk.scale(x)

@tc.task
def direct(x):
    return x + 1
"""


def test_a_module_edited_on_disk_but_not_reloaded_keys_the_code_that_ran(tmp_path, cache_dir):
    """The old code runs after the edit: its result must not be stored under a key the
    new code gets once the kernel restarts."""
    code = tmp_path / "code"
    code.mkdir()
    (code / "helpers_disk.py").write_text(HELPERS_V1)
    (code / "tasks_disk.py").write_text(TASKS)
    before_restart = run_script(f"""
        from pathlib import Path
        import tasks_disk
        folder = Path(tasks_disk.__file__).parent
        # edited on disk, never reloaded: this process keeps running the old code
        (folder / "helpers_disk.py").write_text({HELPERS_V2!r})
        (folder / "tasks_disk.py").write_text(
            (folder / "tasks_disk.py").read_text().replace("x + 1", "x + 1000"))
        print(tasks_disk.compute(5), tasks_disk.direct(5))
        print(tasks_disk.compute(5), tasks_disk.direct(5))
    """, cache_dir, code)
    assert before_restart.split() == ["10", "6", "10", "6"]  # the code that was loaded
    after_restart = run_script("""
        import tasks_disk
        print(tasks_disk.compute(5), tasks_disk.direct(5))
    """, cache_dir, code)
    assert after_restart.split() == ["150", "1005"]  # was "10 6": the old results


def test_a_module_edited_without_reload_keeps_a_cell_on_its_loaded_code(ip, make_module):
    helpers = make_module("helpers_cell", HELPERS_V1)
    ip.user_ns["helpers_cell"] = helpers
    cell = "%%task uses_helper\ny = helpers_cell.scale(3)"
    ip.run_cell(cell)
    Path(helpers.__file__).write_text(HELPERS_V2)  # not reloaded: scale still doubles
    ip.run_cell(cell)
    assert "hit uses_helper" in last_status(ip) and ip.user_ns["y"] == 6
    importlib.reload(helpers)
    ip.run_cell(cell)
    assert "miss uses_helper" in last_status(ip) and ip.user_ns["y"] == 90


# --------------------------------------------------------------------------- restored values


SHELL = """
import json
from IPython.core.displaypub import CapturingDisplayPublisher
from IPython.core.interactiveshell import InteractiveShell

shell = InteractiveShell.instance()
shell.display_pub = CapturingDisplayPublisher()
shell.run_line_magic("load_ext", "taskcache")
# imported in a plain cell: a first import of scikit-learn inside a %%task cell leaves the
# global random generators in a state a hit cannot promise (see lifecycle/random_state.py)
assert shell.run_cell("from sklearn.datasets import load_digits").success
cells = [
    "%%task digits\\ndata = load_digits()",
    "%%task count\\nn = len(data.target)\\nfirst = data.feature_names[:2]",
]
for cell in cells:
    assert shell.run_cell(cell).success
lines = [o["data"]["text/plain"] for o in shell.display_pub.outputs if "taskcache" in o["metadata"]]
print(json.dumps({"status": [line.split()[1] for line in lines], "n": shell.user_ns["n"]}))
"""


def test_a_restored_bunch_keys_downstream_cells_as_the_original(cache_dir):
    """``data = load_digits()``: its pickle drops some of the Bunch's state, so the restored
    value hashes differently; the cell that uses it must still hit after a restart."""
    first = json.loads(run_script(SHELL, cache_dir).splitlines()[-1])
    assert first == {"status": ["miss", "miss"], "n": 1797}
    second = json.loads(run_script(SHELL, cache_dir).splitlines()[-1])
    assert second == {"status": ["hit", "hit"], "n": 1797}
    third = json.loads(run_script(SHELL, cache_dir).splitlines()[-1])
    assert third == second


# --------------------------------------------------------------------------- memoized state


GROUPBY_CELLS = [
    "%%task by_day\ngrouped = tips.groupby(['day', 'smoker'])",
    "%%task pct\ngrouped_pct = grouped['tip_pct']\ngrouped_pct.agg('mean')",
    "%%task stats\ngrouped_pct.agg(['mean', spread])",
    "%%task both\nresult = grouped[['tip_pct', 'total_bill']].agg(['count', 'mean'])",
]


def test_a_groupby_keys_by_its_content_not_by_what_pandas_memoized(ip):
    """ch10 of the pydata book: ``grouped_pct = grouped["tip_pct"]`` shares ``grouped``'s
    grouper, and aggregating either with a Python function fills more of the grouper's memo
    (pandas' ``_cache``). On a re-run the hits restore the stored copies, which no longer
    share it, so ``grouped`` reached the last cell with another memo than in the real run:
    when the memo counted as content, that cell missed once on every re-run of the notebook.
    The memo is derived from the content: filling it neither changes a key nor makes
    ``grouped`` an output of the cell that used it."""
    ip.run_cell("import pandas as pd\n"
                "tips = pd.DataFrame({'day': list('ababab'), 'smoker': list('yynnyn'),\n"
                "                     'tip': [1.0, 2.0, 3.0, 4.0, 5.0, 6.0],\n"
                "                     'total_bill': [10.0, 11.0, 12.0, 13.0, 14.0, 15.0]})\n"
                "tips['tip_pct'] = tips['tip'] / tips['total_bill']\n"
                "def spread(values):\n    return values.max() - values.min()")
    for cell in GROUPBY_CELLS:
        assert ip.run_cell(cell).success
    first = ip.user_ns["result"]
    assert [s.split()[1] for s in statuses(ip)] == ["miss"] * 4
    ip.display_pub.outputs.clear()
    for cell in GROUPBY_CELLS:
        assert ip.run_cell(cell).success
    assert [s.split()[1] for s in statuses(ip)] == ["hit"] * 4
    assert ip.user_ns["result"].equals(first)
    import taskcache as tc

    outputs = tc.run(tc.runs(task="pct").index[0]).outputs
    assert "grouped_pct" in outputs and "grouped" not in outputs
