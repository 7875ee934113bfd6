"""Library state set in a %%task cell (print options, random seeds, pandas options, rcParams)
is keyed, stored and put back on a hit, as a plain run would leave it (issue 12)."""

from __future__ import annotations

import random

import numpy as np
import pandas as pd
import pytest

import taskcache as tc
from taskcache.lifecycle import process_state


def last_status(ip) -> str:
    return [o["data"]["text/plain"] for o in ip.display_pub.outputs if "taskcache" in o["metadata"]][-1]


@pytest.fixture(autouse=True)
def fresh_library_state():
    """Each test starts, and leaves, the states as a fresh kernel has them."""
    saved = (np.get_printoptions(), np.random.get_state(), random.getstate(),
             pd.get_option("display.max_rows"))
    yield
    np.set_printoptions(**saved[0])
    np.random.set_state(saved[1])
    random.setstate(saved[2])
    pd.set_option("display.max_rows", saved[3])


def new_kernel_state() -> None:
    """What a fresh kernel starts from: default print options, an unseeded generator."""
    np.set_printoptions(precision=8, suppress=False)
    np.random.seed(None)
    pd.reset_option("display.max_rows")


SETUP = "import numpy as np\nnp.random.seed(12345)\nnp.set_printoptions(precision=4, suppress=True)"
DRAW = "samples = np.random.standard_normal(3)\nrepr(samples)"


def test_print_options_and_seed_of_a_hit_are_put_back(ip):
    ip.run_cell_magic("task", "setup", SETUP)
    first = ip.run_cell_magic("task", "draw", DRAW)
    state_after = np.random.get_state()[1].copy()
    assert "miss draw" in last_status(ip) and first == "array([-0.2047,  0.4789, -0.5194])"
    new_kernel_state()
    ip.run_cell_magic("task", "setup", SETUP)
    assert "hit setup" in last_status(ip)
    assert np.get_printoptions()["precision"] == 4 and np.get_printoptions()["suppress"]
    again = ip.run_cell_magic("task", "draw", DRAW)  # the generator is where the seed put it
    assert "hit draw" in last_status(ip) and again == first
    assert (np.random.get_state()[1] == state_after).all()  # as the real draw left it
    assert repr(np.array([1 / 3])) == "array([0.3333])"


def test_a_cell_that_draws_misses_when_the_generator_is_elsewhere(ip):
    ip.user_ns["np"] = np
    np.random.seed(1)
    first = ip.run_cell_magic("task", "draw", DRAW)
    np.random.seed(2)  # plain code moved the generator: the same cell draws other numbers
    second = ip.run_cell_magic("task", "draw", DRAW)
    assert "miss draw" in last_status(ip) and second != first
    assert "numpy.random is not in the state the stored run drew from" in last_status(ip)
    assert second == repr(np.random.RandomState(2).standard_normal(3))
    np.random.seed(2)  # where the newest run started: a hit, and the draw is put back
    assert ip.run_cell_magic("task", "draw", DRAW) == second
    assert "hit draw" in last_status(ip)
    assert np.random.standard_normal() == np.random.RandomState(2).standard_normal(4)[3]


def test_python_random_is_keyed_only_where_drawn(ip):
    ip.user_ns["random"] = random
    random.seed(7)
    first = ip.run_cell_magic("task", "roll", "random.random()")
    random.seed(8)
    assert ip.run_cell_magic("task", "roll", "random.random()") != first
    assert "miss roll" in last_status(ip)
    ip.run_cell_magic("task", "plain", "y = 2")  # does not draw: the generator is no input
    random.seed(9)
    ip.run_cell_magic("task", "plain", "y = 2")
    assert "hit plain" in last_status(ip)


def test_a_seed_cell_hits_from_any_starting_state(ip):
    ip.user_ns["np"] = np
    ip.run_cell_magic("task", "seed", "np.random.seed(5)")
    for start in (None, 3):
        np.random.seed(start)
        ip.run_cell_magic("task", "seed", "np.random.seed(5)")
        assert "hit seed" in last_status(ip)
        assert np.random.standard_normal() == np.random.RandomState(5).standard_normal()


def test_settings_are_part_of_the_key_and_pandas_options_come_back(ip):
    ip.user_ns.update(np=np, pd=pd)
    ip.run_cell_magic("task", "opts", "pd.options.display.max_rows = 20")
    pd.reset_option("display.max_rows")
    ip.run_cell_magic("task", "opts", "pd.options.display.max_rows = 20")
    assert "hit opts" in last_status(ip) and pd.get_option("display.max_rows") == 20
    ip.run_cell_magic("task", "show", "repr(np.array([1 / 3]))")
    np.set_printoptions(precision=3)  # the same code prints differently: a miss
    assert ip.run_cell_magic("task", "show", "repr(np.array([1 / 3]))") == "array([0.333])"
    assert "miss show" in last_status(ip)


def test_states_are_stored_only_when_changed(ip):
    ip.user_ns["np"] = np
    ip.run_cell_magic("task", "calm", "z = np.arange(3).sum()")
    run = tc.run(tc.runs(task="calm").index[0])
    assert not [n for n in run.outputs if n.startswith("__state__")]
    ip.run_cell_magic("task", "loud", "np.set_printoptions(precision=2)")
    run = tc.run(tc.runs(task="loud").index[0])
    assert run.outputs["__state__.numpy.printoptions"] == {"set": {"precision": 2}}


LEVEL = {"level": 0}


def set_level(n: int) -> None:
    LEVEL["level"] = n


def test_users_register_their_own_state(ip):
    tc.register_state("test.level", "random", lambda: dict(LEVEL), LEVEL.update)
    try:
        ip.user_ns["set_level"] = set_level
        ip.run_cell_magic("task", "lvl", "set_level(3)")
        LEVEL["level"] = 0  # a new kernel
        ip.run_cell_magic("task", "lvl", "set_level(3)")
        assert "hit lvl" in last_status(ip) and LEVEL["level"] == 3
        LEVEL["level"] = 5  # another setting before the cell: a miss
        ip.run_cell_magic("task", "lvl", "set_level(3)")
        assert "miss lvl" in last_status(ip)
    finally:
        process_state.unregister_state("test.level")
        LEVEL["level"] = 0


def test_a_setting_changed_in_place_is_a_change(ip):
    import matplotlib

    ip.user_ns["matplotlib"] = matplotlib
    size = list(matplotlib.rcParams["figure.figsize"])
    try:
        ip.run_cell_magic("task", "look", "w = matplotlib.rcParams['figure.figsize'][0]")
        matplotlib.rcParams["figure.figsize"][0] = size[0] + 1  # in place: another setting
        ip.run_cell_magic("task", "look", "w = matplotlib.rcParams['figure.figsize'][0]")
        assert "miss look" in last_status(ip) and ip.user_ns["w"] == size[0] + 1
        ip.run_cell_magic("task", "grow", "matplotlib.rcParams['figure.figsize'][1] += 1")
        matplotlib.rcParams["figure.figsize"][1] = size[1]
        ip.run_cell_magic("task", "grow", "matplotlib.rcParams['figure.figsize'][1] += 1")
        assert "hit grow" in last_status(ip)
        assert list(matplotlib.rcParams["figure.figsize"]) == [size[0] + 1, size[1] + 1]
    finally:
        matplotlib.rcParams["figure.figsize"] = size
