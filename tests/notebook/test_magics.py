"""%%task and %taskcache driven through a real IPython shell and a real catalog."""

from __future__ import annotations

import threading

import numpy as np
import pandas as pd
import pytest
from IPython.core.error import UsageError

import taskcache as tc


def statuses(ip) -> list[str]:
    return [o["data"]["text/plain"] for o in ip.display_pub.outputs if "taskcache" in o["metadata"]]


def last_status(ip) -> str:
    return statuses(ip)[-1]


def run(ip, cell: str):
    result = ip.run_cell(cell)
    return result


def test_miss_then_hit_restores_outputs_and_replays_prints(ip, capsys):
    ip.user_ns["x"] = 3
    cell = "%%task double\ny = x * 2\nprint('computed', y)\n"
    assert run(ip, cell).success
    assert ip.user_ns["y"] == 6
    assert last_status(ip).startswith("taskcache: miss double #1 (ran in")
    assert capsys.readouterr().out.count("computed 6") == 1
    del ip.user_ns["y"]
    assert run(ip, cell).success
    assert ip.user_ns["y"] == 6
    assert capsys.readouterr().out.count("computed 6") == 1  # replayed
    assert last_status(ip).startswith("taskcache: hit double #1 (saved ")


def test_run_cell_magic_directly(ip):
    ip.user_ns["a"] = 2
    ip.run_cell_magic("task", "sq", "b = a ** 2")
    ip.user_ns.pop("b")
    ip.run_cell_magic("task", "sq", "b = a ** 2")
    assert ip.user_ns["b"] == 4
    assert "hit sq" in last_status(ip)


def test_input_change_is_a_miss_comment_change_a_hit(ip):
    ip.user_ns["x"] = 1
    run(ip, "%%task t\ny = x + 1")
    run(ip, "%%task t\n# a comment\ny = x + 1   # same code")
    assert "hit t" in last_status(ip)
    ip.user_ns["x"] = 2
    run(ip, "%%task t\ny = x + 1")
    assert "miss t" in last_status(ip) and ip.user_ns["y"] == 3


def test_editing_a_helper_in_another_cell_is_a_miss(ip):
    run(ip, "def scale(v):\n    return v * factor()\n\ndef factor():\n    return 2")
    ip.user_ns["x"] = 5
    run(ip, "%%task scaled\ny = scale(x)")
    run(ip, "%%task scaled\ny = scale(x)")
    assert "hit scaled" in last_status(ip)
    run(ip, "def factor():\n    return 3")  # a helper of the helper
    run(ip, "%%task scaled\ny = scale(x)")
    assert "miss scaled" in last_status(ip) and ip.user_ns["y"] == 15


def test_ipython_syntax_in_the_body(ip, capsys):
    cell = "%%task shell\nfiles = !echo one && echo two\nn = len(files)\n%time w = n * 2\n"
    assert run(ip, cell).success
    assert ip.user_ns["n"] == 2 and ip.user_ns["w"] == 4
    for name in ("files", "n", "w"):
        del ip.user_ns[name]
    assert run(ip, cell).success
    assert "hit shell" in last_status(ip)
    assert list(ip.user_ns["files"]) == ["one", "two"] and ip.user_ns["w"] == 4


def test_mutated_input_is_restored_on_a_hit(ip):
    ip.user_ns["items"] = [1, 2]
    ip.user_ns["df"] = pd.DataFrame({"a": [1, 2]})
    cell = "%%task mutate\nitems.append(3)\ndf['b'] = df['a'] * 10\nn = len(items)"
    run(ip, cell)
    assert "stored mutated input items, df" in last_status(ip) or "stored mutated input df, items" in last_status(ip)
    ip.user_ns["items"] = [1, 2]
    ip.user_ns["df"] = pd.DataFrame({"a": [1, 2]})
    run(ip, cell)
    assert "hit mutate" in last_status(ip)
    assert ip.user_ns["items"] == [1, 2, 3] and ip.user_ns["n"] == 3
    assert list(ip.user_ns["df"].columns) == ["a", "b"]


def test_rich_display_is_replayed_in_order(ip, capsys):
    cell = (
        "%%task show\nfrom IPython.display import HTML, display\n"
        "print('before')\ndisplay(HTML('<b>table</b>'))\nprint('after')\nv = 1"
    )
    run(ip, cell)
    first = [o["data"] for o in ip.display_pub.outputs if "taskcache" not in o["metadata"]]
    ip.display_pub.clear_output()
    ip.display_pub.outputs.clear()
    run(ip, cell)
    again = [o["data"] for o in ip.display_pub.outputs if "taskcache" not in o["metadata"]]
    assert again == first and again[0]["text/html"] == "<b>table</b>"
    out = capsys.readouterr().out
    assert out.count("before") == 2 and out.count("after") == 2


def test_final_expression_is_the_cell_result_on_miss_and_hit(ip):
    ip.user_ns["x"] = 20
    first = run(ip, "%%task expr\nx + 1")
    second = run(ip, "%%task expr\nx + 1")
    assert first.result == 21 and second.result == 21
    assert "hit expr" in last_status(ip)
    assert ip.user_ns["_"] == 21


def test_functions_and_imports_defined_in_the_cell_are_restored(ip):
    cell = "%%task defs\nimport math\ndef area(r):\n    return math.pi * r * r\nbig = area(10)"
    run(ip, cell)
    for name in ("math", "area", "big"):
        del ip.user_ns[name]
    run(ip, cell)
    assert "hit defs" in last_status(ip)
    assert ip.user_ns["area"](1) == pytest.approx(3.14159, rel=1e-4)
    assert ip.user_ns["big"] == pytest.approx(314.159, rel=1e-4)


def test_restored_functions_keep_their_source_and_hash(ip):
    import inspect

    from taskcache.hashing import hash_code

    cell = "%%task defs2\nimport math\n\ndef area(r):\n    return math.pi * r * r\nbig = area(2)"
    run(ip, cell)
    computed = (inspect.getsource(ip.user_ns["area"]), hash_code(ip.user_ns["area"]))
    del ip.user_ns["area"]
    run(ip, cell)
    assert "hit defs2" in last_status(ip)
    assert (inspect.getsource(ip.user_ns["area"]), hash_code(ip.user_ns["area"])) == computed


def test_matplotlib_figure_in_a_cell_is_stored_and_restored(ip):
    import matplotlib

    matplotlib.use("Agg")
    cell = "%%task plot\nimport matplotlib.pyplot as plt\nfig, ax = plt.subplots()\nax.plot([3, 1, 2])\nn_lines = len(ax.lines)"
    run(ip, cell)
    assert "miss plot" in last_status(ip)
    for name in ("fig", "ax", "n_lines"):
        del ip.user_ns[name]
    run(ip, cell)
    assert "hit plot" in last_status(ip)
    assert ip.user_ns["n_lines"] == 1 and list(ip.user_ns["ax"].lines[0].get_ydata()) == [3, 1, 2]
    ip.run_cell("import matplotlib.pyplot as plt; plt.close('all')")


def test_failed_cell_shows_the_usual_traceback_and_records_it(ip, capsys):
    ip.run_line_magic("colors", "nocolor")
    plain = run(ip, "pass\nx = 1\n1 / 0")  # the same statements on the same lines, plainly
    expected = capsys.readouterr().out.replace("      1 pass", "      1 %%task boom")
    result = run(ip, "%%task boom\nx = 1\n1 / 0")
    assert isinstance(result.error_in_exec, ZeroDivisionError) and not result.success
    out = capsys.readouterr().out
    assert "1 / 0" in out and "_cell.py" not in out and "magics.py" not in out
    strip = __import__("re").compile(r"In\[\d+\]|ipython-input-\d+-[0-9a-f]+")
    assert strip.sub("CELL", out) == strip.sub("CELL", expected)
    assert not plain.success
    (run_id,) = tc.runs(task="boom").index
    record = tc.run(run_id)
    assert record.status == "failed" and "ZeroDivisionError" in record.error["traceback"]
    run(ip, "%%task boom\nx = 1\n1 / 0")  # failures are never served from cache
    assert len(tc.runs(task="boom")) == 2


def test_a_failed_cell_says_so_and_its_traceback_names_its_own_cell(ip, capsys):
    ip.run_line_magic("colors", "nocolor")
    ip.run_cell("def helper(v):\n    return v['missing']", store_history=True)
    result = ip.run_cell("%%task broken\nd = {}\nhelper(d)", store_history=True)
    number = result.execution_count
    assert isinstance(result.error_in_exec, KeyError)
    assert last_status(ip) == "taskcache: failed broken #1, nothing cached"
    out = capsys.readouterr().out
    assert f"Cell In[{number}], line 3" in out and f"Cell In[{number - 1}], line 2" in out
    recorded = tc.run(1).error["traceback"]  # what the Error tab shows
    assert f"Cell In[{number}], line 3, in <module>" in recorded
    assert f"Cell In[{number - 1}], line 2, in helper" in recorded
    assert "taskcache" not in recorded and "ipykernel" not in recorded
    assert recorded.strip().endswith("KeyError: 'missing'")
    before = len(statuses(ip))
    ip.run_cell("%%task broken -q\nd = {}\nhelper(d)", store_history=True)
    assert len(statuses(ip)) == before  # -q: no status line, failed or not


def test_keyboard_interrupt_cancels_the_run(ip):
    run(ip, "%%task stop\nraise KeyboardInterrupt")
    assert list(tc.runs(task="stop")["status"]) == ["cancelled"]


def test_unstorable_output_keeps_effects_and_says_why(ip, capsys):
    run(ip, "%%task gen\ng = (i for i in range(3))\nk = 1")
    line = last_status(ip)  # one line: the status says why
    assert "not cached: cannot store 'g'" in line and "generator" in line and "--outputs" in line
    assert "\n" not in line and capsys.readouterr().err == ""
    assert ip.user_ns["k"] == 1 and list(ip.user_ns["g"]) == [0, 1, 2]
    (run_id,) = tc.runs(task="gen").index
    assert tc.run(run_id).status == "failed"
    assert "not cached" in tc.run(run_id).history()[-1].reason


def test_unhashable_input_runs_the_cell_uncached_and_names_the_fix(ip):
    ip.user_ns["lock"] = threading.Lock()
    assert run(ip, "%%task locked\nwith lock:\n    v = 1\nv + 1").success  # works plain: works here
    assert ip.user_ns["v"] == 1 and ip.user_ns["_"] == 2
    line = last_status(ip)
    assert "not cached: cannot hash 'lock' of type _thread.lock" in line
    assert "--ignore lock" in line and "register_hasher(lock, fn)" in line and "\n" not in line
    assert len(tc.runs(task="locked")) == 0  # nothing recorded: the key was never made
    ip.run_cell_magic("task", "locked --ignore lock", "with lock:\n    v = 1")
    assert "miss locked" in last_status(ip)


def test_a_cell_reading_an_unhashable_value_works_as_plain(ip, tmp_path, capsys):
    """pydata-book ch06 cells 28-29: an open file and a csv.reader over it."""
    (tmp_path / "ex7.csv").write_text("a,b\n1,2\n")
    ip.user_ns["path"] = str(tmp_path / "ex7.csv")
    assert run(ip, "%%task open_it\nimport csv\nf = open(path)\nreader = csv.reader(f)").success
    status = last_status(ip)
    assert "not cached: cannot store 'f'" in status and "close it (with open(...) as f:)" in status
    capsys.readouterr()
    assert run(ip, "%%task read_it\nfor line in reader:\n    print(line)\nf.close()").success
    assert capsys.readouterr().out == "['a', 'b']\n['1', '2']\n"
    assert "not cached: cannot hash 'reader' of type _csv.reader" in last_status(ip)




def test_a_file_closed_by_its_with_block_is_cached_and_comes_back_closed(ip, tmp_path):
    """pydata-book ch06 cell 30, ch13 cell 2: ``with open(path) as f:`` leaves ``f`` bound to
    a closed file, all of whose state a hit gives back; the file read still keys the run."""
    (tmp_path / "ex7.csv").write_text("a,b\r\n1,2\n")
    ip.user_ns["path"] = str(tmp_path / "ex7.csv")
    cell = "%%task read_csv\nimport csv\nwith open(path) as f:\n    lines = list(csv.reader(f))"
    assert run(ip, cell).success
    assert last_status(ip).startswith("taskcache: miss read_csv")
    real = ip.user_ns.pop("f")
    assert run(ip, cell).success
    assert last_status(ip).startswith("taskcache: hit read_csv")
    f = ip.user_ns["f"]
    assert f is not real and f.closed and repr(f) == repr(real) and f.name == str(tmp_path / "ex7.csv")
    assert (f.mode, f.encoding, f.newlines) == (real.mode, real.encoding, ("\n", "\r\n"))
    with pytest.raises(ValueError, match="closed file"):
        f.read()
    assert run(ip, "%%task closed\nwas_closed = f.closed").success  # a closed file is an input
    assert last_status(ip).startswith("taskcache: miss closed")
    (tmp_path / "ex7.csv").write_text("a,b\n3,4\n")
    assert run(ip, cell).success
    assert last_status(ip).startswith("taskcache: miss read_csv")
    assert ip.user_ns["lines"] == [["a", "b"], ["3", "4"]] and ip.user_ns["f"].newlines == "\n"


def test_a_vectorized_function_that_was_called_is_cached(ip):
    """pydata-book appendix A cell 45: ``np.vectorize`` keeps the ufunc it builds on its first
    call, which pickle cannot save. That memo is not the value (a fresh one builds it again):
    the cell is cached, and a hit gives back a vectorize of the notebook's function."""
    ip.run_cell("import numpy as np\ndef add_elements(x, y):\n    return x + y")
    cell = ("%%task vec\nadd_them = np.vectorize(add_elements, otypes=[np.float64])\n"
            "total = add_them(np.arange(4), np.arange(4))")
    assert run(ip, cell).success
    assert last_status(ip).startswith("taskcache: miss vec")
    from taskcache.hashing import hash_value

    stored = hash_value(ip.user_ns.pop("add_them"))
    assert run(ip, cell).success
    assert last_status(ip).startswith("taskcache: hit vec")
    ns = ip.user_ns
    assert ns["add_them"].pyfunc is ns["add_elements"] and ns["add_them"].otypes == [np.dtype("float64")]
    assert ns["add_them"](np.arange(3), 1).tolist() == [1.0, 2.0, 3.0]
    assert ns["total"].tolist() == [0.0, 2.0, 4.0, 6.0]
    assert hash_value(ns["add_them"]) == stored  # later cells key as after the real run


def test_options(ip):
    ip.user_ns["x"] = 1
    run(ip, "%%task opt -t a -t b --version 3\ny = x")
    record = tc.run(int(tc.runs(task="opt").index[0]))
    assert record.tags == ("a", "b") and record.user_version == "3"
    run(ip, "%%task opt -t a -t b --version 3 --force\ny = x")
    assert "miss opt" in last_status(ip)
    run(ip, "%%task opt -t a -t b --version 3 --no-cache\ny = x")
    assert "miss opt" in last_status(ip)
    assert len(tc.runs(task="opt")) == 3
    count = len(statuses(ip))
    run(ip, "%%task opt -q -t a -t b --version 3\ny = x")
    assert len(statuses(ip)) == count


def test_inputs_and_outputs_override_the_analysis(ip):
    ip.user_ns.update(x=1, noise=0)
    run(ip, "%%task io -i x -o a\na = x + noise\nb = 2")
    record = tc.run(int(tc.runs(task="io").index[0]))
    assert list(record.inputs) == ["x"]
    assert [a.name for a in record.artifacts if not a.name.startswith("__")] == ["a"]
    ip.user_ns["noise"] = 100  # not an input any more: still a hit
    run(ip, "%%task io -i x -o a\na = x + noise\nb = 2")
    assert "hit io" in last_status(ip)


def test_bad_options_raise_usage_errors(ip):
    with pytest.raises(UsageError):
        ip.run_cell_magic("task", "--no-such-option", "a = 1")
    with pytest.raises(UsageError, match="not a variable name"):
        ip.run_cell_magic("task", "-o 'a b'", "a = 1")
    with pytest.raises(UsageError, match="not defined"):
        ip.run_cell_magic("task", "-i missing", "a = 1")


def test_task_magic_documents_itself(ip):
    doc = ip.magics_manager.magics["cell"]["task"].__doc__
    assert "--force" in doc and "--ignore" in doc and "--no-cache" in doc


def test_reload_ext_does_not_stack(ip):
    before = len(ip.configurables)
    ip.run_line_magic("reload_ext", "taskcache")
    ip.run_line_magic("reload_ext", "taskcache")
    assert len(ip.configurables) == before
    assert sum(type(c).__name__ == "TaskCache" for c in ip.configurables) == 1
    ip.user_ns["x"] = 1
    run(ip, "%%task again\ny = x")
    assert len(statuses(ip)) == 1


def test_config_changes_the_catalog(ip, tmp_path):
    target = tmp_path / "elsewhere"
    ip.run_line_magic("config", f"TaskCache.cache_dir = {str(target)!r}")
    run(ip, "%%task moved\nz = 1")
    assert (target / "catalog.db").exists()


def test_line_magic_subcommands(ip, capsys):
    ip.user_ns["x"] = 1
    run(ip, "%%task lm\ny = x * 3")
    ip.user_ns["x"] = 2
    run(ip, "%%task lm\ny = x * 3")
    frame = ip.run_line_magic("taskcache", "runs --task lm")
    assert list(frame["status"]) == ["completed", "completed"]
    first = int(frame.index[-1])
    capsys.readouterr()
    ip.run_line_magic("taskcache", f"show {first}")
    assert "y = x * 3" in capsys.readouterr().out
    ip.run_line_magic("taskcache", f"load {first} y")
    assert ip.user_ns["y"] == 3
    ip.run_line_magic("taskcache", "why")
    assert "input x: 1 -> 2" in capsys.readouterr().out
    ip.run_line_magic("taskcache", "verify")
    assert "0 broken" in capsys.readouterr().out
    ip.run_line_magic("taskcache", "gc --dry-run")
    assert "would remove 0 runs" in capsys.readouterr().out
    ip.run_line_magic("taskcache", "config")
    assert "cache_dir" in capsys.readouterr().out
    panel = ip.run_line_magic("taskcache", "browse --status completed --no-live")
    assert panel.status == "completed" and panel.shown_runs and not panel.polling
    panel.close()
    with pytest.raises(UsageError):
        ip.run_line_magic("taskcache", "frobnicate")
    with pytest.raises(UsageError, match="no run #999"):
        ip.run_line_magic("taskcache", "show 999")


def test_runs_is_compact_unless_all_and_refuses_an_unknown_status(ip, capsys):
    import re

    ip.user_ns["n"] = 300_000
    run(ip, "%%task big\nimport numpy as np\nblob = np.arange(n)\nprint(len(blob))")
    run(ip, "%%task broken\nz = {}['nope']")
    frame = ip.run_line_magic("taskcache", "runs")
    assert list(frame.columns) == ["task", "status", "started", "duration", "hits", "error"]
    assert list(frame.index) == [2, 1] and list(frame["task"]) == ["broken", "big"]
    assert list(frame["error"]) == ["KeyError: 'nope'", ""]
    assert all(re.fullmatch(r"\d\d:\d\d:\d\d", t) for t in frame["started"])  # local, today
    assert all(re.fullmatch(r"[\d.]+ (ms|s)", d) for d in frame["duration"])
    full = ip.run_line_magic("taskcache", "runs --all")
    assert {"fingerprint", "created_at", "error_type", "kind"} <= set(full.columns)
    with pytest.raises(UsageError, match="invalid choice: 'bogus'.*'pending', 'running', "
                                         "'completed', 'failed', 'cancelled'"):
        ip.run_line_magic("taskcache", "runs --status bogus")
    capsys.readouterr()
    ip.run_line_magic("taskcache", "show 1")
    shown = capsys.readouterr().out
    assert "blob: numpy.ndarray shape (300000,) [npy, 2.4 MB]" in shown
    assert "printed and displayed" not in shown and "bytes" not in shown
    ip.run_line_magic("taskcache", "show 2")
    assert "error: KeyError: 'nope'" in capsys.readouterr().out


def test_why_names_a_changed_helper_and_code_line(ip, capsys):
    run(ip, "def clean(v):\n    return v")
    ip.user_ns["x"] = 1
    run(ip, "%%task w\ny = clean(x)")
    run(ip, "def clean(v):\n    return -v")
    run(ip, "%%task w\ny = clean(x) + 1")
    capsys.readouterr()
    ip.run_line_magic("taskcache", "why w")
    out = capsys.readouterr().out
    assert "dependency clean" in out and "+y = clean(x) + 1" in out


def test_lineage_between_two_cells(ip):
    run(ip, "%%task load\nimport pandas as pd\nraw = pd.DataFrame({'v': range(10)})")
    run(ip, "%%task clean\nsmall = raw[raw.v < 5]")
    clean = tc.run(int(tc.runs(task="clean").index[0]))
    load = tc.run(int(tc.runs(task="load").index[0]))
    assert clean.upstream() == [load]


def test_a_cell_abandoned_too_often_is_refused_with_a_message_not_a_traceback(ip, capsys):
    import time

    from taskcache.lifecycle.runner import MAX_ABANDONED, get_runner
    from taskcache.notebook.cell import CellOptions, CellTask

    ip.user_ns["n"] = 3
    body = "big = [0] * n"
    runner = get_runner()
    spec = CellTask(ip, runner, body, CellOptions(name="oom")).spec()
    ids = [runner.catalog.claim(spec, lease_seconds=0.001).run_id  # kernels that died in it
           for _ in range(MAX_ABANDONED)]
    time.sleep(0.01)
    capsys.readouterr()
    result = run(ip, "%%task oom\n" + body)
    assert isinstance(result.error_in_exec, UsageError) and "big" not in ip.user_ns
    shown = "".join(capsys.readouterr())
    assert (f"run of task oom (fingerprint {spec.fingerprint[:16]}) was abandoned 3 times "
            f"(runs {', '.join(f'#{i}' for i in ids)}: the process died while computing it, "
            f"e.g. out of memory); not retrying automatically. Use --force / .force() to try "
            f"again") in shown
    assert "Traceback" not in shown and "runner.py" not in shown and "catalog.py" not in shown
    assert list(tc.runs(task="oom")["status"]) == ["failed"] * 3
    run(ip, "%%task oom --force\n" + body)
    assert ip.user_ns.pop("big") == [0, 0, 0] and "miss oom" in last_status(ip)
    run(ip, "%%task oom\n" + body)
    assert ip.user_ns["big"] == [0, 0, 0] and "hit oom" in last_status(ip)


def test_a_cache_folder_other_users_can_write_is_a_usage_error(ip, tmp_path):
    import os

    shared = tmp_path / "shared"
    shared.mkdir()
    os.chmod(shared, 0o777)
    ip.run_line_magic("config", f"TaskCache.cache_dir = {str(shared)!r}")
    with pytest.raises(UsageError, match=f"writable by other users .*chmod 700 {shared}"):
        ip.run_cell_magic("task", "t", "y = 1")
    assert "y" not in ip.user_ns
    with pytest.raises(UsageError, match="chmod 700"):
        ip.run_line_magic("taskcache", "runs")
    os.chmod(shared, 0o700)
    ip.run_cell_magic("task", "t", "y = 1")
    assert ip.user_ns["y"] == 1


def test_gc_max_size_in_the_line_magic(ip, capsys):
    ip.user_ns["n"] = 50_000
    run(ip, "%%task big -q\nblob = 'x' * n")
    run(ip, "%%task small -q\ntiny = 'y'")
    capsys.readouterr()
    ip.run_line_magic("taskcache", "gc --max-size 1KB --dry-run")
    out = capsys.readouterr().out
    assert "would remove 1 runs" in out and "runs: #1" in out and "limit 0.0 MB" in out
    with pytest.raises(UsageError, match="'1XB' is not a size"):
        ip.run_line_magic("taskcache", "gc --max-size 1XB")
    ip.run_line_magic("taskcache", "gc --max-size 1KB")
    assert list(tc.runs().index) == [2]


def test_a_stored_value_may_refer_to_a_function_of_its_own_cell(ip):
    """pydata-book ch10 cell 65: `def get_year(x): ...; by_year = rets.groupby(get_year)`:
    on a hit, the cell's functions are back before the stored values are unpickled."""
    ip.user_ns["rets"] = pd.Series([1.0, 2.0, 3.0], index=[2003, 2003, 2004])
    cell = "def get_year(x):\n    return x\n\nby_year = rets.groupby(get_year)\nby_year.sum()"
    first = ip.run_cell_magic("task", "years", cell)
    assert "miss years" in last_status(ip)
    for name in ("get_year", "by_year"):  # a new kernel
        del ip.user_ns[name]
    again = ip.run_cell_magic("task", "years", cell)
    assert "hit years" in last_status(ip)
    pd.testing.assert_series_equal(again, first)
    pd.testing.assert_series_equal(ip.user_ns["by_year"].sum(), first)
    assert ip.user_ns["get_year"](5) == 5


def test_a_regex_match_is_stored_and_keys_the_next_cell(ip):
    """pydata-book ch07 cells 77-78: `m = regex.search(text)`, then cells that read m."""
    ip.run_cell("import re\nregex = re.compile(r'[A-Z0-9._%+-]+@[A-Z0-9.-]+\\.[A-Z]{2,4}', flags=re.IGNORECASE)\n"
                "text = 'Dave dave@google.com\\nSteve steve@gmail.com'")
    cell = "m = regex.search(text)\ntext[m.start():m.end()]"
    assert ip.run_cell_magic("task", "find", cell) == "dave@google.com"
    assert "miss find" in last_status(ip)
    del ip.user_ns["m"]
    assert ip.run_cell_magic("task", "find", cell) == "dave@google.com"
    assert "hit find" in last_status(ip) and ip.user_ns["m"].span() == (5, 20)
    ip.run_cell_magic("task", "groups", "g = m.group(0).upper()")
    ip.run_cell_magic("task", "groups", "g = m.group(0).upper()")
    assert "hit groups" in last_status(ip) and ip.user_ns["g"] == "DAVE@GOOGLE.COM"


def test_a_definition_reading_a_value_of_its_cell_is_replayed_after_it(ip):
    cell = "threshold = 5\ndef above(x, t=threshold):\n    return x > t\nflags = [above(4), above(6)]"
    ip.run_cell_magic("task", "defaults", cell)
    for name in ("threshold", "above", "flags"):  # a new kernel
        del ip.user_ns[name]
    ip.run_cell_magic("task", "defaults", cell)
    assert "hit defaults" in last_status(ip)
    assert ip.user_ns["above"](5.5) is True and ip.user_ns["above"].__defaults__ == (5,)


def test_a_cell_run_records_the_notebook_it_came_from(ip, monkeypatch):
    monkeypatch.delenv("JPY_SESSION_NAME", raising=False)
    run(ip, "%%task plain\na = 1")
    assert tc.run(1).env["path"] == ""  # a plain IPython: no notebook
    monkeypatch.setenv("JPY_SESSION_NAME", "/srv/work/from-server.ipynb")
    run(ip, "%%task served\nb = 1")
    assert tc.run(2).env["path"] == "/srv/work/from-server.ipynb"
    ip.user_ns["__session__"] = "/home/me/lab.ipynb"  # JupyterLab
    run(ip, "%%task lab\nc = 1")
    assert tc.run(3).env["path"] == "/home/me/lab.ipynb"
    ip.user_ns["__vsc_ipynb_file__"] = "/home/me/code.ipynb"  # VS Code
    run(ip, "%%task vscode\nd = 1")
    assert tc.run(4).env["path"] == "/home/me/code.ipynb"


def test_a_catalog_locked_at_the_claim_runs_the_cell_uncached(ip, cache_dir):
    import sqlite3
    import warnings

    from taskcache.errors import CacheWarning

    tc.configure(busy_timeout_seconds=0.2)
    ip.run_cell("%%task warm\nw = 1")  # creates the catalog
    ip.user_ns["x"] = 2
    other = sqlite3.connect(cache_dir / "catalog.db", isolation_level=None)
    other.execute("BEGIN EXCLUSIVE")  # the lookup still reads (WAL); the claim cannot write
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = ip.run_cell("%%task locked\ny = x * 3\ny")
    finally:
        other.execute("ROLLBACK")
        other.close()
    assert result.success and result.result == 6 and ip.user_ns["y"] == 6
    assert any(issubclass(w.category, CacheWarning) and "ran without the cache" in str(w.message)
               for w in caught)
