"""The benchmark script (benchmarks/run.py) at tiny sizes, so that it cannot rot.

No timing assertions: only that every case runs, prints its table and lands in the JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from tests.helpers import clean_env

ROOT = Path(__file__).resolve().parent.parent
CASES = ("hashing", "tiny_hit", "input_hit", "output_hit", "cell_hit", "catalog_scale",
         "hash_memory", "sweep", "growth", "file_hit")


def test_benchmarks_quick_run(tmp_path: Path) -> None:
    out = tmp_path / "bench.json"
    env = clean_env()
    proc = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run.py"), "--quick", "--out", str(out)],
        capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env,  # a hang fails
    )
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-4000:]
    for number, name in enumerate(CASES, 1):
        assert f"== case {number}: {name}" in proc.stdout, name
    assert "PASS" in proc.stdout or "MISS" in proc.stdout
    data = json.loads(out.read_text())
    assert data["meta"]["quick"] is True
    assert set(data["cases"]) == set(CASES)
    for name, case in data["cases"].items():
        assert "error" not in case, (name, case.get("traceback"))
        assert case["rows"], name
        assert case["targets"], name
    assert not list(tmp_path.glob(".taskcache")), "the benchmark left a cache in the cwd"
