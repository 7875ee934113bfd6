"""Execute the notebooks in this folder from an empty taskcache catalog and save their outputs.

    .venv/bin/python notebooks/execute.py                      # every notebooks/*.ipynb
    .venv/bin/python notebooks/execute.py notebooks/tour.ipynb

The committed outputs are what nbval compares against (``make test``), so re-run this after
editing a notebook. Each notebook gets a fresh temporary catalog (``TASKCACHE_DIR``) and a
temporary working folder, so run ids start at 1 and nothing lands in the repository. Volatile
metadata (execution timings) is not recorded, and the temporary catalog path printed by
``%load_ext taskcache`` is replaced by a stable placeholder.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import nbformat
from nbclient import NotebookClient

HERE = Path(__file__).resolve().parent
CACHE_PLACEHOLDER = "/tmp/taskcache-notebook-cache"


def _replace_path(nb: nbformat.NotebookNode, old: str, new: str) -> None:
    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = output["text"].replace(old, new)
            for mime, value in output.get("data", {}).items():
                if isinstance(value, str) and mime.startswith("text/"):
                    output["data"][mime] = value.replace(old, new)


def execute(path: Path, *, cache_dir: str, cwd: str, timeout: int = 600) -> nbformat.NotebookNode:
    """Run ``path`` in a fresh kernel with ``TASKCACHE_DIR=cache_dir``; return the notebook."""
    nb = nbformat.read(path, as_version=4)
    env = dict(os.environ, TASKCACHE_DIR=cache_dir)
    env.pop("TASKCACHE_DB_URL", None)
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": cwd}},
    )
    client.execute(env=env)  # a cell tagged raises-exception may fail; any other error raises
    return nb


def main(argv: list[str]) -> int:
    paths = [Path(p) for p in argv] or sorted(HERE.glob("*.ipynb"))
    for path in paths:
        with tempfile.TemporaryDirectory(prefix="taskcache-nb-") as tmp:
            cache_dir = os.path.join(tmp, "cache")
            started = time.perf_counter()
            nb = execute(path, cache_dir=cache_dir, cwd=tmp)
            took = time.perf_counter() - started
        _replace_path(nb, cache_dir, CACHE_PLACEHOLDER)
        nb.metadata.pop("widgets", None)
        nbformat.validate(nb)
        nbformat.write(nb, path)
        print(f"executed {path} in {took:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
