"""A value a hit restores hashes as the value that was stored, in a later process too: real
objects (scikit-learn, pandas, matplotlib, a user dataclass) saved by the runner in this
process and loaded in a fresh one."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from taskcache.hashing import hash_value
from taskcache.lifecycle.runner import get_runner
from taskcache.records import RunSpec

LOAD = """
import json, sys
from taskcache.hashing import hash_value
from taskcache.lifecycle.runner import get_runner

hit = get_runner().lookup(sys.argv[1])
print(json.dumps({
    "as_stored": {k: hash_value(v) for k, v in hit.outputs.items()},
    "own": {k: hash_value(v, as_stored=False) for k, v in hit.outputs.items()},
    "codecs": {a.name: a.codec for a in hit.run.artifacts},
}))
"""


def corpus(records: Any) -> dict[str, Any]:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from sklearn.datasets import load_digits, load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    iris = load_iris()
    model = LogisticRegression(max_iter=300).fit(iris.data, iris.target)
    scaler = StandardScaler().fit(iris.data)
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([1, 3, 2])
    ax.set_title("corpus")
    index = pd.MultiIndex.from_product([["a", "b"], [1, 2]], names=["letter", "n"])
    return {
        "digits": load_digits(),
        "iris": iris,
        "model": model,
        "scaler": scaler,
        "categorical": pd.DataFrame({"c": pd.Categorical(["x", "y", "x"], categories=["y", "x"])}),
        "tz_aware": pd.DataFrame({"t": pd.date_range("2024-03-30", periods=3, freq="D",
                                                     tz="Europe/Paris")}),
        "multiindex": pd.DataFrame({"v": [1.0, 2.0, 3.0, 4.0]}, index=index),
        "figure": fig,
        "record": records.Sample(name="s", values=np.arange(3.0), meta={"b": 1, "a": 2}),
        "nested_arrays": {"b": {"x": np.arange(3)}, "a": [np.ones(2), np.zeros((2, 2))]},
        "big_endian_dates": {"when": np.array(["NaT", "2020"], dtype=">M8[Y]")},
    }


def test_restored_values_hash_as_the_originals_in_a_fresh_process(make_module, cache_dir: Path):
    records = make_module("corpus_records", """
        import dataclasses
        import numpy as np

        @dataclasses.dataclass
        class Sample:
            name: str
            values: np.ndarray
            meta: dict
    """)
    values = corpus(records)
    originals = {name: hash_value(value) for name, value in values.items()}
    runner = get_runner()
    claim = runner.start(RunSpec(task="corpus", kind="function", fingerprint="fp-corpus",
                                 code_hash="c"))
    runner.save(claim, "corpus", values, duration=0.0)

    env = {**os.environ, "TASKCACHE_DIR": str(cache_dir),
           "PYTHONPATH": os.pathsep.join([str(Path(records.__file__).parent), *sys.path])}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(LOAD), "fp-corpus"], env=env,
                          capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, done.stderr
    loaded = json.loads(done.stdout.splitlines()[-1])
    assert loaded["as_stored"] == originals
    # frames went through their exact codecs; the rest through pickle
    assert {n for n, c in loaded["codecs"].items() if c != "pickle"} == {
        "categorical", "tz_aware", "multiindex"}
    # where pickle drops state, only the recorded hash makes them equal: the Bunches lose
    # their deprecation map, numpy makes big-endian datetimes native
    changed = {n for n in originals if loaded["own"][n] != originals[n]}
    assert {"digits", "iris", "big_endian_dates"} <= changed
    assert changed == {a.name for a in runner.catalog.find_completed("fp-corpus").artifacts
                       if a.restored_hash is not None}
