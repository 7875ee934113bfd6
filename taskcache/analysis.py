"""Pure source analysis: which names a cell reads and binds, and normalized code.

No IPython here: ``%%task`` transforms IPython syntax to plain Python before calling in.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class CellAnalysis:
    inputs: tuple[str, ...]      # names read before (definitely) being assigned, first-use order
    outputs: tuple[str, ...]     # names bound at top level, first-binding order
    definitions: tuple[str, ...] # subset of outputs bound by def/class/import (replayable code)
    has_result: bool             # the last statement is an expression (its value is the result)
    normalized: str              # normalize_source(source)


def normalize_source(source: str) -> str:
    """Canonical text of the code: ast.dump without docstrings, comments or formatting."""
    raise NotImplementedError


def analyze_cell(source: str) -> CellAnalysis:
    """Inputs/outputs of a cell body (plain Python). Raises SyntaxError unchanged."""
    raise NotImplementedError


def free_names(source: str) -> tuple[str, ...]:
    """Global names a function/class source reads (loads not bound locally), sorted."""
    raise NotImplementedError
