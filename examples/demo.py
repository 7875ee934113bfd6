"""The taskcache demo: an expensive function runs once, then comes back from the cache.

Run it with ``make demo`` (or ``python examples/demo.py``). It uses a throwaway cache folder,
so the first call is always a miss.
"""

from __future__ import annotations

import tempfile
import time

import numpy as np
import pandas as pd

import taskcache as tc


@tc.task(tags=["demo"])
def make_data(n_rows: int, seed: int) -> pd.DataFrame:
    """Synthetic regression data: y = X @ w + noise."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(rng.normal(size=(n_rows, 8)), columns=[f"x{i}" for i in range(8)])
    frame["y"] = frame.to_numpy() @ np.arange(1.0, 9.0) + rng.normal(scale=0.5, size=n_rows)
    return frame


@tc.task(tags=["demo"])
def bootstrap_ridge(data: pd.DataFrame, alpha: float, rounds: int = 200) -> dict:
    """Bootstrap the ridge coefficients: slow on purpose (a few hundred solves)."""
    X = data.drop(columns="y").to_numpy()
    y = data["y"].to_numpy()
    rng = np.random.default_rng(0)
    coefs = []
    for _ in range(rounds):
        idx = rng.integers(0, len(X), len(X))
        Xb, yb = X[idx], y[idx]
        coefs.append(np.linalg.solve(Xb.T @ Xb + alpha * np.eye(X.shape[1]), Xb.T @ yb))
    coefs = np.array(coefs)
    return {"mean": coefs.mean(axis=0).round(4).tolist(), "std": coefs.std(axis=0).round(4).tolist()}


def timed(label: str, fn, *args, **kwargs):
    start = time.perf_counter()
    value = fn(*args, **kwargs)
    print(f"{label:<42} {1000 * (time.perf_counter() - start):9.1f} ms")
    return value


def main() -> None:
    folder = tempfile.mkdtemp(prefix="taskcache-demo-")
    tc.configure(cache_dir=folder)
    print(f"catalog: {folder}\n")
    data = timed("make_data(200_000, seed=1)   [miss]", make_data, 200_000, seed=1)
    timed("bootstrap_ridge(data, 1.0)    [miss]", bootstrap_ridge, data, 1.0)
    data = timed("make_data(200_000, seed=1)   [hit]", make_data, 200_000, seed=1)
    fit = timed("bootstrap_ridge(data, 1.0)    [hit]", bootstrap_ridge, data, 1.0)
    timed("bootstrap_ridge(data, 10.0)   [miss: new alpha]", bootstrap_ridge, data, 10.0)
    print(f"\ncoefficients (mean): {fit['mean']}\n")
    with pd.option_context("display.width", 160, "display.max_columns", 12):
        print(tc.runs()[["task", "status", "duration", "hit_count", "tags"]])
    upstream = tc.run(int(tc.runs(task="bootstrap_ridge").index[-1])).upstream()
    print(f"\nlineage: the first bootstrap_ridge run read the output of {upstream}")
    s = tc.summary()
    print(f"\nsummary: {s['runs']} runs, {s['hits']} hits, {s['time_saved']:.2f} s saved, "
          f"{s['disk_bytes'] / 1e6:.1f} MB on disk")


if __name__ == "__main__":
    main()
