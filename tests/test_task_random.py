"""``@task`` functions and the global random generators (Python's ``random``, numpy's legacy
``np.random.*``): a call is served only from a run that found the generators as they are now,
and a hit leaves them where the run left them, as for ``%%task`` cells (see
lifecycle/random_state.py). Functions are defined and called in a real IPython shell; the
sessions of the last tests are new processes on one catalog."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

DRAW = """
import random
import numpy as np
import taskcache as tc

@tc.task
def draw():
    return [random.random() for _ in range(3)]

@tc.task
def np_draw(n):
    return np.random.standard_normal(n).tolist()

@tc.task
def double(x):
    return 2 * x

@tc.task
def seeded(s):
    random.seed(s)
    return random.random()
"""


def value(ip: Any, code: str) -> Any:
    """Run ``code`` (statements, then an expression) as one cell; the expression's value."""
    *body, last = ast.parse(code).body
    assignment = ast.Assign([ast.Name("_value", ast.Store())], last.value, lineno=0)
    result = ip.run_cell(ast.unparse(ast.Module([*body, assignment], [])), store_history=True)
    result.raise_error()
    return ip.user_ns.pop("_value")


def runs(ip: Any, name: str) -> list[str]:
    return list(value(ip, f"{name}.runs()['status']"))


def test_seeded_1_and_2_never_hit_each_other_and_the_state_after_a_hit_is_the_runs(ip):
    ip.run_cell(DRAW)
    plain = value(ip, "random.seed(1); x = draw.__wrapped__(); (x, random.random())")
    other = value(ip, "random.seed(2); draw.__wrapped__()")
    assert value(ip, "random.seed(1); (draw(), random.random())") == plain  # miss: #1
    assert value(ip, "random.seed(2); draw()") == other                     # not #1: miss #2
    assert runs(ip, "draw") == ["completed", "completed"]
    assert list(value(ip, "draw.runs()['hit_count']")) == [0, 0]  # #1 was not served, nor counted
    # both states have a run now: each is served its own, and leaves the generator where
    # the real run left it
    assert value(ip, "random.seed(1); (draw(), random.random())") == plain
    assert value(ip, "random.seed(2); draw()") == other
    assert len(runs(ip, "draw")) == 2
    assert value(ip, "random.seed(2); draw.lookup().id") == 2  # what a call would be served
    assert value(ip, "random.seed(3); draw.lookup()") is None
    # a state no run found (drawn from since the seed) is a miss
    assert value(ip, "random.seed(1); random.random(); draw()") == value(
        ip, "random.seed(1); random.random(); draw.__wrapped__()")
    assert len(runs(ip, "draw")) == 3


def test_a_function_that_does_not_draw_hits_whatever_the_seed(ip):
    ip.run_cell(DRAW)
    assert value(ip, "random.seed(1); np.random.seed(1); double(21)") == 42
    assert value(ip, "random.seed(2); np.random.seed(7); (double(21), random.random())") == (
        42, value(ip, "random.seed(2); random.random()"))  # a hit, the generator untouched
    assert len(runs(ip, "double")) == 1


def test_a_function_that_seeds_first_hits_from_any_state_and_leaves_the_runs_state(ip):
    ip.run_cell(DRAW)
    plain = value(ip, "x = seeded.__wrapped__(5); (x, random.random())")
    assert value(ip, "random.seed(1); (seeded(5), random.random())") == plain
    assert value(ip, "random.seed(2); random.random(); (seeded(5), random.random())") == plain
    assert len(runs(ip, "seeded")) == 1


def test_numpy_legacy_generator(ip):
    ip.run_cell(DRAW)
    plain = value(ip, "np.random.seed(1); x = np_draw.__wrapped__(4); (x, np.random.rand())")
    other = value(ip, "np.random.seed(2); np_draw.__wrapped__(4)")
    assert value(ip, "np.random.seed(1); (np_draw(4), np.random.rand())") == plain
    assert value(ip, "np.random.seed(2); np_draw(4)") == other
    assert value(ip, "np.random.seed(1); (np_draw(4), np.random.rand())") == plain  # a hit
    assert len(runs(ip, "np_draw")) == 2
    # Python's generator is another one: seeding it does not matter to np_draw
    assert value(ip, "np.random.seed(2); random.seed(9); np_draw(4)") == other
    assert len(runs(ip, "np_draw")) == 2


def test_why_names_the_generator(ip):
    ip.run_cell(DRAW)
    value(ip, "random.seed(1); draw()")
    value(ip, "random.seed(2); draw()")
    ip.run_cell("%%capture out\n%taskcache why draw")
    lines = ip.user_ns["out"].stdout.splitlines()
    assert lines == ["draw #2 missed because, compared with #1 (same key):",
                     "  - random generator random: #1 found it in another state (it was "
                     "seeded or drawn from otherwise)"]


def test_a_coroutine_function_too(ip):
    ip.run_cell(DRAW + "\n@tc.task\nasync def adraw():\n    return random.random()\n")
    plain = value(ip, "random.seed(1); x = await adraw.__wrapped__(); (x, random.random())")
    other = value(ip, "random.seed(2); await adraw.__wrapped__()")
    assert value(ip, "random.seed(1); (await adraw(), random.random())") == plain
    assert value(ip, "random.seed(2); await adraw()") == other
    assert value(ip, "random.seed(1); (await adraw(), random.random())") == plain
    assert len(runs(ip, "adraw")) == 2


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_map_over_a_drawing_function_is_never_a_false_hit(ip, executor):
    """A pool's worker draws from generators the caller cannot know: a map over a function
    that draws unseeded runs every time, and its runs serve no plain call either."""
    ip.run_cell(DRAW + "\n@tc.task\ndef walk(i):\n    return i + random.random()\n")
    first = value(ip, f"random.seed(1); walk.map([1, 2], executor={executor!r}, progress=False)")
    second = value(ip, f"random.seed(1); walk.map([1, 2], executor={executor!r}, progress=False)")
    assert len(runs(ip, "walk")) == 4
    assert set(value(ip, "walk.runs()['hit_count']")) == {0}  # none served, none counted
    if executor == "threads":  # the pool's threads drew from the caller's generator, in
        # either order: what a point found cannot be known
        draws = value(ip, "random.seed(1); sorted([random.random(), random.random()])")
        assert sorted(v - i for v, i in zip(first, [1, 2], strict=True)) == pytest.approx(draws)
        assert sorted(v - i for v, i in zip(second, [1, 2], strict=True)) == pytest.approx(draws)
    plain = value(ip, "random.seed(1); x = walk.__wrapped__(1); (x, random.random())")
    assert value(ip, "random.seed(1); (walk(1), random.random())") == plain
    assert len(runs(ip, "walk")) == 5
    ip.run_cell("%%capture out\n%taskcache why walk")
    why = ip.user_ns["out"].stdout.splitlines()[1]
    assert why.startswith("  - random generator random: #") and why.endswith(
        "drew from it in a pool's thread, where the state it found cannot be known (it "
        "serves no other call)" if executor == "threads" else
        "found it in another state (it was seeded or drawn from otherwise)")


@pytest.mark.parametrize("executor", ["threads", "processes"])
def test_a_map_over_a_function_that_seeds_first_hits(ip, executor):
    ip.run_cell(DRAW)
    plain = value(ip, "[seeded.__wrapped__(s) for s in (1, 2, 3)]")
    sweep = f"seeded.map([1, 2, 3], executor={executor!r}, progress=False)"
    assert value(ip, sweep) == plain
    before = value(ip, "random.seed(4); state = random.getstate(); state")
    assert value(ip, f"random.seed(4); ({sweep}, random.getstate())") == (plain, before)
    assert len(runs(ip, "seeded")) == 3  # all hits; the caller's generator left alone
    assert value(ip, "random.seed(8); (seeded(2), random.random())") == value(
        ip, "x = seeded.__wrapped__(2); (x, random.random())")  # a plain call hits them too
    assert len(runs(ip, "seeded")) == 3


# -- new processes ----------------------------------------------------------------------
SESSION = """
import json, sys
from IPython.core.interactiveshell import InteractiveShell

cells, names = json.loads(sys.argv[1])
shell = InteractiveShell.instance()
for cell in cells:
    result = shell.run_cell(cell, store_history=True)  # as a kernel runs a notebook's cells
    if not result.success:
        raise SystemExit(f"cell failed: {cell!r}: {result.error_before_exec or result.error_in_exec!r}")
print(json.dumps({name: shell.user_ns[name] for name in names}))
"""
SCRIPT = """
import json, sys
import taskcache as tc

@tc.task
def walk():
    import random
    return [random.random() for _ in range(3)]

print(json.dumps(walk()))
"""
LOAD = "%load_ext taskcache"
DEFINE = ("import random, numpy as np, taskcache as tc\n"
          "@tc.task\ndef walk():\n    return [random.random() for _ in range(3)]\n"
          "@tc.task\ndef np_walk():\n    return np.random.standard_normal(3).tolist()")
CALLS = "x = walk(); y = np_walk(); after = [random.random(), float(np.random.rand())]"
COUNT = "n = len(walk.runs()) + len(np_walk.runs())"


def _env(cache: Path) -> dict[str, str]:
    env = {**os.environ, "TASKCACHE_DIR": str(cache), "PYTHONDONTWRITEBYTECODE": "1",
           "PYTHONPATH": os.pathsep.join(sys.path)}
    env.pop("PYTHONSTARTUP", None)
    return env


def session(cache: Path, cells: list[str], names: list[str]) -> dict[str, Any]:
    """Run ``cells`` in a real IPython shell in a new process on the catalog ``cache``."""
    done = subprocess.run([sys.executable, "-c", SESSION, json.dumps([cells, names])],
                          env=_env(cache), capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr + done.stdout
    return json.loads(done.stdout.splitlines()[-1])


def test_an_unseeded_call_hits_in_a_new_kernel_and_a_seeded_one_does_not(cache_dir):
    names = ["x", "y", "after", "n"]
    first = session(cache_dir, [LOAD, DEFINE, CALLS, COUNT], names)
    assert first["n"] == 2
    second = session(cache_dir, [LOAD, DEFINE, CALLS, COUNT], names)
    # fresh entropy in both kernels: the hit gives the run's numbers, and the generators
    # continue from where the run left them
    assert second == first
    seeding = "random.seed(1); np.random.seed(1)"
    seeded = session(cache_dir, [LOAD, DEFINE, seeding, CALLS, COUNT], names)
    assert seeded["n"] == 4 and seeded["x"] != first["x"] and seeded["y"] != first["y"]
    again = session(cache_dir, [LOAD, DEFINE, seeding, CALLS, COUNT], names)
    assert again == seeded  # the same seed: the seeded runs serve it
    # a generator drawn from outside a task is no longer fresh entropy
    drawn = session(cache_dir, [LOAD, DEFINE, "random.random(); np.random.rand()", CALLS, COUNT],
                    names)
    assert drawn["n"] == 6


def test_in_a_script_nothing_vouches_for_fresh_entropy(cache_dir, tmp_path):
    """Without the extension nothing watches the generators' imports: an unseeded draw in
    a new process is not provably fresh, so it runs again."""
    script = tmp_path / "walk.py"
    script.write_text(SCRIPT)

    def run() -> list[float]:
        done = subprocess.run([sys.executable, str(script)], env=_env(cache_dir),
                              capture_output=True, text=True, timeout=240)
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    assert run() != run()


LAUNCHED = """
import random
from taskcache import task

@task
def draw():
    return random.random()

@task
def seeded(s):
    random.seed(s)
    return random.random()
"""


def test_a_launched_call_that_draws_is_never_served_from_an_earlier_run(make_module):
    """The run browser's and the server's Launch runs a call in a process of its own, whose
    generators nobody here knows: as for map, only a run that seeded first serves it."""
    from taskcache.lifecycle.runner import get_runner
    from taskcache.tasks.discovery import DiscoveredTask
    from taskcache.tasks.launcher import Launcher

    module = make_module("launched_draws", LAUNCHED)
    launcher = Launcher()

    def launch(name: str, **arguments: Any) -> tuple[bool, int]:
        function = getattr(module, name)
        started = launcher.launch(DiscoveredTask(function.task_name, module.__name__, name,
                                                 function, []), arguments)
        deadline = time.monotonic() + 60
        while get_runner().catalog.get_run(started.run_id).status == "running":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert get_runner().catalog.get_run(started.run_id).status == "completed"
        return started.hit, started.run_id

    first = launch("draw")
    second = launch("draw")
    assert not first[0] and not second[0] and second[1] != first[1]
    ran = launch("seeded", s=3)
    assert not ran[0] and launch("seeded", s=3) == (True, ran[1])
