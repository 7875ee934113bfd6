"""Figures of the inline backend come after a cell's Out[] value, with or without %%task
(issue 12, pydata-book ch04 cell 69, ch11 cells 102-115): real kernels through nbclient."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

CELLS = [
    "import matplotlib.pyplot as plt",
    "plt.figure()",
    "print('before')\nplt.plot([1, 2, 3])\nplt.title('t')",
    "fig = plt.figure()\nplt.plot([3, 2])\nplt.show()\n42",  # shown at once by plt.show()
]


def execute(sources: list[str], cache_dir: Path, cwd: Path) -> list[list[Any]]:
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_code_cell(s) for s in sources]
    env = dict(os.environ, TASKCACHE_DIR=str(cache_dir))
    env.pop("TASKCACHE_DB_URL", None)
    NotebookClient(nb, timeout=120, kernel_name="python3", record_timing=False,
                   resources={"metadata": {"path": str(cwd)}}).execute(env=env)
    shown = []
    for cell in nb.cells:
        kinds = []
        for out in cell.outputs:
            status = (out.get("metadata") or {}).get("taskcache", {}).get("status")
            if status:
                kinds.append(f"status:{status}")
            elif out.output_type == "stream":
                kinds.append(f"{out.name}:{out.text}")
            else:
                kinds.append(f"{out.output_type}:{sorted(out.get('data', {}))}")
        shown.append(kinds)
    return shown


def test_figures_follow_the_result_on_miss_and_hit(tmp_path: Path) -> None:
    plain = execute(CELLS, tmp_path / "unused", tmp_path)
    assert [kind.split(":")[0] for kind in plain[1]] == ["execute_result", "display_data"]
    assert "image/png" in plain[2][-1] and plain[2][0] == "stdout:before\n"
    wrapped = ["%load_ext taskcache"] + [f"%%task c{i}\n{s}" for i, s in enumerate(CELLS)]
    for status in ("miss", "hit"):
        runs = execute(wrapped, tmp_path / "cache", tmp_path)[1:]
        for cell, (plain_kinds, kinds) in enumerate(zip(plain, runs, strict=True)):
            assert f"status:{status}" in kinds, (cell, kinds)
            kinds.remove(f"status:{status}")
            assert kinds == plain_kinds, (status, cell)
