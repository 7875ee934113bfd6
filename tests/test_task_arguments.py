"""@task on a function that changes its arguments in place, or returns a view of one: a hit
leaves the caller's objects as a real call would (real modules, catalog and artifacts)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from taskcache.errors import CacheWarning

MUTATORS = """
import taskcache as tc
CALLS = []

class Model:
    def __init__(self):
        self.weights = None

class Slotted:
    __slots__ = ("value",)
    def __init__(self):
        self.value = 0

@tc.task
def append(items, v):
    CALLS.append("append")
    items.append(v)
    return len(items)

@tc.task
def normalize(arr, frame, table):
    CALLS.append("normalize")
    arr /= arr.max()
    frame["double"] = frame["a"] * 2
    table["seen"] = True
    return float(arr.sum())

@tc.task
def fit(model, x):
    CALLS.append("fit")
    model.weights = [v * 2 for v in x]
    return "fitted"

@tc.task
def bump(slotted):
    CALLS.append("bump")
    slotted.value += 1
    return slotted.value

@tc.task
def head(arr):
    CALLS.append("head")
    return arr[:2]
"""


def test_a_list_changed_by_the_function_is_changed_on_a_hit_too(make_module):
    mod = make_module("m_mut_list", MUTATORS)
    first = [1]
    assert mod.append(first, 5) == 2 and first == [1, 5]
    again = [1]
    alias = again
    assert mod.append(again, 5) == 2
    assert mod.CALLS == ["append"]  # a hit
    assert again == [1, 5] and alias is again  # the caller's own list, as a real call leaves it


def test_arrays_frames_dicts_and_plain_objects_are_written_back_in_place(make_module):
    mod = make_module("m_mut_many", MUTATORS)

    def fresh():
        return np.array([1.0, 2.0, 4.0]), pd.DataFrame({"a": [1, 2]}), {"n": 1}

    arr, frame, table = fresh()
    expected = mod.normalize(arr, frame, table)
    arr2, frame2, table2 = fresh()
    view_of_arr2 = arr2[1:]
    assert mod.normalize(arr2, frame2, table2) == expected
    assert mod.CALLS == ["normalize"]
    np.testing.assert_array_equal(arr2, arr)
    assert view_of_arr2.tolist() == [0.5, 1.0]  # written in place: views of it see it
    pd.testing.assert_frame_equal(frame2, frame)
    assert table2 == {"n": 1, "seen": True}

    model = mod.Model()
    assert mod.fit(model, [1, 2]) == "fitted" and model.weights == [2, 4]
    other = mod.Model()
    assert mod.fit(other, [1, 2]) == "fitted" and other.weights == [2, 4]
    assert mod.CALLS == ["normalize", "fit"]


def test_a_change_a_hit_cannot_replay_is_not_cached_and_said_once(make_module):
    mod = make_module("m_mut_slots", MUTATORS)
    with pytest.warns(CacheWarning, match=r"bump\(\) changes its argument 'slotted' \(.*Slotted\) in place"):
        assert mod.bump(mod.Slotted()) == 1
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CacheWarning)
        assert mod.bump(mod.Slotted()) == 1
    assert mod.CALLS == ["bump", "bump"]  # computed each time: a hit would not bump it


def test_a_returned_view_of_an_argument_is_a_view_after_a_hit(make_module):
    mod = make_module("m_view_ret", MUTATORS)
    mod.head(np.arange(5))
    arr = np.arange(5)
    first_two = mod.head(arr)
    assert mod.CALLS == ["head"]
    arr[0] = 100
    assert first_two.tolist() == [100, 1] and np.shares_memory(first_two, arr)
