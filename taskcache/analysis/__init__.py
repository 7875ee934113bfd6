"""Pure source analysis: which names a cell reads and binds, its normalized code, and what
a function's code refers to. ``cell`` analyses a cell; ``scopes`` summarises the nested
scopes (def, lambda, class, comprehension) it contains."""

from taskcache.analysis.cell import (
    CellAnalysis,
    analyze_cell,
    definition_reads,
    free_names,
    function_seeds,
    normalize_source,
    sink_names,
)
from taskcache.analysis.scopes import attribute_reads

__all__ = [
    "CellAnalysis",
    "analyze_cell",
    "attribute_reads",
    "definition_reads",
    "free_names",
    "function_seeds",
    "normalize_source",
    "sink_names",
]
