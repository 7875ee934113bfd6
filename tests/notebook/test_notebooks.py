"""notebooks/tour.ipynb run twice against the same catalog, each time in a fresh kernel.

The second execution must be served from the cache: every ``%%task`` cell reports a hit (except
the cell that fails on purpose: failures are never cached), every cell shows the same outputs
as the first time (once timings and ids are sanitized), and the whole execution is faster.
"""

from __future__ import annotations

import os
import re
import time
from pathlib import Path
from typing import Any

import nbformat
from nbclient import NotebookClient

NOTEBOOKS = Path(__file__).resolve().parents[2] / "notebooks"
TOUR = NOTEBOOKS / "tour.ipynb"


def _sanitize_patterns() -> list[tuple[str, str]]:
    """The nbval sanitizer's patterns, plus what changes between two runs on one catalog."""
    text = (NOTEBOOKS / "sanitize.cfg").read_text()
    patterns = re.findall(r"^regex: (.*)$\n^replace: (.*)$", text, flags=re.MULTILINE)
    assert patterns, "notebooks/sanitize.cfg has no patterns"
    return patterns + [(r"\bhits \d+", "hits <N>")]  # %taskcache show: hit counts grow


PATTERNS = _sanitize_patterns()


def sanitize(text: str) -> str:
    for regex, replace in PATTERNS:
        text = re.sub(regex, replace, text)
    return text


def execute(cache_dir: Path, cwd: Path) -> tuple[nbformat.NotebookNode, float]:
    """Run the tour in a new kernel with TASKCACHE_DIR=cache_dir; return it and the wall time."""
    nb = nbformat.read(TOUR, as_version=4)
    env = dict(os.environ, TASKCACHE_DIR=str(cache_dir))
    env.pop("TASKCACHE_DB_URL", None)
    client = NotebookClient(
        nb, timeout=300, kernel_name="python3", record_timing=False,
        resources={"metadata": {"path": str(cwd)}},
    )
    started = time.perf_counter()
    client.execute(env=env)  # raises CellExecutionError unless the failing cell is tagged
    return nb, time.perf_counter() - started


def status_of(output: dict[str, Any]) -> str | None:
    """The taskcache status ("hit", "miss", ...) of a status-line output, else None."""
    if output.get("output_type") != "display_data":
        return None
    return (output.get("metadata") or {}).get("taskcache", {}).get("status")


def comparable(outputs: list[dict[str, Any]]) -> list[Any]:
    """A cell's outputs without taskcache's status line, streams joined, text sanitized."""
    shown: list[Any] = []
    streams: dict[str, str] = {}
    for out in outputs:
        kind = out["output_type"]
        if status_of(out) is not None:
            continue
        if kind == "stream":
            streams[out["name"]] = streams.get(out["name"], "") + out["text"]
        elif kind in ("display_data", "execute_result"):
            data = out["data"]
            item = {mime: sanitize(data[mime]) for mime in ("text/plain", "text/html") if mime in data}
            item.update({mime: data[mime] for mime in data if mime.startswith("image/")})
            shown.append((kind, sorted(data), item))
        elif kind == "error":
            shown.append(("error", out["ename"], sanitize(out["evalue"])))
    return [(name, sanitize(text)) for name, text in sorted(streams.items())] + shown


def is_task_cell(cell: nbformat.NotebookNode) -> bool:
    return cell.cell_type == "code" and cell.source.lstrip().startswith("%%task")


def raises(cell: nbformat.NotebookNode) -> bool:
    return "raises-exception" in cell.metadata.get("tags", [])


def test_second_execution_of_the_tour_is_served_from_the_cache(tmp_path: Path, cache_dir: Path):
    work = tmp_path / "work"
    work.mkdir()
    first, first_seconds = execute(cache_dir, work)
    second, second_seconds = execute(cache_dir, work)

    task_cells = [i for i, cell in enumerate(first.cells) if is_task_cell(cell)]
    assert len(task_cells) >= 8 and any(raises(first.cells[i]) for i in task_cells)
    first_statuses = [status_of(o) for i in task_cells for o in first.cells[i].outputs]
    assert "miss" in first_statuses  # the first execution really computed

    for i in task_cells:
        cell = second.cells[i]
        statuses = [s for s in map(status_of, cell.outputs) if s is not None]
        errors = [o for o in cell.outputs if o["output_type"] == "error"]
        if raises(cell):
            assert statuses == ["failed"] and len(errors) == 1, f"cell {i} should fail again:\n{cell.source}"
        else:
            assert statuses == ["hit"] and not errors, f"cell {i}: {statuses}\n{cell.source}"

    for i, (before, after) in enumerate(zip(first.cells, second.cells, strict=True)):
        if before.cell_type != "code" or "%taskcache runs" in before.source:
            continue  # a catalog listing legitimately grows (one more failed run, hit counts)
        assert comparable(after.outputs) == comparable(before.outputs), f"cell {i}:\n{before.source}"

    figures = [o for cell in second.cells for o in cell.get("outputs", []) if "image/png" in o.get("data", {})]
    assert figures, "the replayed figure is missing"
    assert not (work / ".taskcache").exists()  # the catalog went to TASKCACHE_DIR only
    assert second_seconds < first_seconds, (first_seconds, second_seconds)
