"""The DAG picture of a flow: its steps as the run browser's lineage graph (same layout and
SVG renderer), each node coloured by the step's status, hits marked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from taskcache.flows.spec import Step

__all__ = ["StepState", "flow_svg"]


@dataclass
class StepState:
    """Where a step stands while its flow runs."""

    status: str = "pending"     # pending, running, completed, failed, cancelled
    hit: bool = False
    seconds: float | None = None
    attempt: int = 1

    def sublabel(self) -> str:
        if self.hit:
            return "hit (from cache)"
        text = self.status
        if self.attempt > 1:
            text += f" · attempt {self.attempt}"
        if self.seconds is not None and self.status != "running":
            text += f" · {self.seconds:.3g} s" if self.seconds >= 0.001 else " · <1 ms"
        return text


def flow_svg(steps: Sequence[Step], states: Mapping[str, StepState] | None = None) -> str:
    """One self-contained SVG of the flow, left to right from the first steps; edges are
    labelled with the argument that takes the upstream result."""
    from taskcache.browser.lineage import Edge, Node, layout_graph, render_svg

    states = states or {}
    ids = {s.name: index for index, s in enumerate(steps, 1)}
    nodes = []
    for s in steps:
        state = states.get(s.name, StepState())
        nodes.append(Node(ids[s.name], s.name, state.sublabel(), state.status))
    edges = [Edge(ids[other], ids[s.name], arg)
             for s in steps for arg, other in s.references().items() if other in ids]
    return render_svg(layout_graph(nodes, edges), css_class="tc-flow-svg")
