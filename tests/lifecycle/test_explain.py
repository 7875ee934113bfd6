"""Explaining a miss: summaries of changed frames, arrays and strings, and ``%taskcache why``
in a real shell, with the earlier value found as another run's output or in the notebook."""

from __future__ import annotations

import numpy as np
import pandas as pd

from taskcache.lifecycle.explain import value_change


def orders() -> pd.DataFrame:
    return pd.DataFrame({"day": range(200), "amount": np.linspace(0, 1, 200),
                         "region": ["north"] * 200})


def test_a_changed_frame_by_shape_columns_dtypes_and_cells():
    old = orders()
    new = old.copy()
    new.loc[:9, "amount"] = 5.0
    new["discount"] = 0.1
    new = new.drop(columns="region")
    new["day"] = new["day"].astype("float64")
    assert value_change(old, new) == ("shape 200 × 3; columns added: discount; columns removed: "
                                      "region; dtype day int64 -> float64; 10 of 400 cells differ")
    assert value_change(old, old.iloc[:150]) == ("shape 200 × 3 -> 150 × 3; rows added: 0, "
                                                 "removed: 50; 0 of 450 cells differ")
    with_nan = old.assign(amount=np.nan)
    assert value_change(with_nan, with_nan.copy()).endswith("0 of 600 cells differ")  # NaN == NaN


def test_a_changed_series_and_array_by_shape_dtype_and_elements():
    old = orders()["amount"]
    # the 100 values up to 0.5 become 0.0; the first one already was
    assert value_change(old, old.where(old > 0.5, 0.0)) == "length 200; 99 of 200 elements differ"
    a = np.arange(12.0).reshape(3, 4)
    b = a.copy()
    b[0, :3] = np.nan
    b[2, 2] = -1
    assert value_change(a, b) == "shape 3 × 4; dtype float64; 4 of 12 elements differ"
    assert value_change(b, b.copy()) == "shape 3 × 4; dtype float64; 0 of 12 elements differ"
    assert value_change(a, b.astype("float32").ravel()) == ("shape 3 × 4 -> 12; "
                                                             "dtype float64 -> float32")


def test_a_long_string_by_a_short_diff():
    text = "the quick brown fox jumps over the lazy dog. " * 5
    summary = value_change(text, text.replace("lazy", "sleepy", 1))
    assert summary.startswith("length 225 -> 227; at character 35: ")
    assert "lazy" in summary and "sleepy" in summary and len(summary) < 160
    assert value_change("a", "b") == "'a' -> 'b'"
    assert value_change(1, 2) is None  # the short reprs say it


def test_why_summarises_a_frame_made_by_another_cell(ip, capsys):
    ip.run_cell("import pandas as pd\nimport numpy as np\nn = 100")
    load = "%%task load\nraw = pd.DataFrame({'v': np.arange(n), 'w': np.ones(n)})"
    ip.run_cell(load)
    ip.run_cell("%%task clean\nsmall = raw[raw.v < 5]")
    ip.run_cell("n = 120")
    ip.run_cell(load)
    ip.run_cell("%%task clean\nsmall = raw[raw.v < 5]")
    capsys.readouterr()
    ip.run_line_magic("taskcache", "why clean")
    out = capsys.readouterr().out
    assert "input raw: shape 100 × 2 -> 120 × 2; rows added: 20, removed: 0; 0 of 200 cells " \
           "differ" in out
    assert "->\n" not in out and "Empty DataFrame" not in out  # no multi-line reprs


def test_why_summarises_an_array_changed_in_the_notebook(ip, capsys):
    ip.run_cell("import numpy as np\nx = np.zeros(1000)")
    ip.run_cell("%%task total\ns = float(x.sum())")
    ip.run_cell("x = np.zeros(1000)\nx[:7] = 1")
    ip.run_cell("%%task total\ns = float(x.sum())")
    capsys.readouterr()
    ip.run_line_magic("taskcache", "why total")
    out = capsys.readouterr().out
    # the earlier array was never stored: only the new one is at hand, so no cell count
    assert "input x: its content changed (its earlier value is no longer stored" in out
    # the earlier value made by a task cell, the new one by a plain cell: both at hand
    ip.run_cell("%%task make\nx = np.zeros(2000)")
    ip.run_cell("%%task total\ns = float(x.sum())")
    ip.run_cell("x = x.copy()\nx[-3:] = 5")
    ip.run_cell("%%task total\ns = float(x.sum())")
    capsys.readouterr()
    ip.run_line_magic("taskcache", "why total")
    out = capsys.readouterr().out
    assert "input x: shape 2,000; dtype float64; 3 of 2,000 elements differ" in out
