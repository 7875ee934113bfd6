"""The run browser's lineage view, as three pure steps testable without a browser or a database:
``lineage_graph`` collects the runs around one run, ``layout_graph`` places them left to right
in layers (a small Sugiyama layout), ``render_svg`` draws that as one self-contained SVG."""

from __future__ import annotations

import html
from bisect import bisect_right, insort
from collections import defaultdict, deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from taskcache.describe import format_duration
from taskcache.records import RunRecord

MARGIN = 20.0
_DUMMY_HEIGHT = 16.0   # slot a long edge takes when it passes through a layer
_LANE = 26.0           # band above the drawing where edges that go backwards run
_SWEEPS = 4
_TASK_CHARS = 22
_EDGE_LABEL_CHARS = 18  # about what fits in the default gap between layers
_EDGE_COLOUR = "#868e96"  # outside a themed panel (the SVG alone); theme.py overrides it
#: (fill, text and border) per status: the same in every theme, at least 5.5:1 contrast
_COLOURS = {
    "completed": ("#d3f9d8", "#1b6b2c"),
    "failed": ("#ffe3e3", "#a61e1e"),
    "running": ("#d0ebff", "#14548f"),
    "pending": ("#fff3bf", "#8a4600"),
    "cancelled": ("#f1f3f5", "#495057"),
}


@dataclass(frozen=True)
class Node:
    id: int               # run id
    label: str            # e.g. "#12 load_data"
    sublabel: str = ""    # e.g. "completed · 1.2 s"
    status: str = "completed"
    selected: bool = False


@dataclass(frozen=True)
class Edge:
    source: int   # producer run id
    target: int   # consumer run id
    label: str    # value name(s), e.g. "df" or "df, model"


@dataclass(frozen=True)
class PlacedNode:
    node: Node
    layer: int
    order: int    # position among the runs of its layer, top to bottom
    x: float      # top-left corner of the box
    y: float
    width: float
    height: float


@dataclass(frozen=True)
class PlacedEdge:
    edge: Edge
    points: tuple[tuple[float, float], ...]  # joined by horizontal-tangent Bézier curves
    label_x: float
    label_y: float


@dataclass(frozen=True)
class Layout:
    nodes: tuple[PlacedNode, ...]
    edges: tuple[PlacedEdge, ...]
    width: float
    height: float


def status_colour(status: str) -> tuple[str, str]:
    """(fill, stroke) for a run status; unknown statuses are grey. Shared with the table badges
    so a status has one colour everywhere in the browser."""
    return _COLOURS.get(status, _COLOURS["cancelled"])


# -- collecting ---------------------------------------------------------------------------------

def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[:limit - 1] + "…"


def _node(run: RunRecord, selected: bool) -> Node:
    task = _clip(run.task, _TASK_CHARS)
    sub = run.status if run.duration is None else f"{run.status} · {format_duration(run.duration)}"
    return Node(run.id, f"#{run.id} {task}", sub, run.status, selected)


def lineage_graph(center: RunRecord, upstream: Callable[[int], Sequence[RunRecord]],
                  downstream: Callable[[int], Sequence[RunRecord]], *, depth: int = 2,
                  max_nodes: int = 30) -> tuple[list[Node], list[Edge]]:
    """The runs within ``depth`` steps up- and downstream of ``center``, closest first (then by
    id) and at most ``max_nodes`` of them, with one edge per producer -> consumer pair.

    ``upstream``/``downstream`` are ``Catalog.upstream``/``.downstream``; their records must
    carry inputs, as edges come from ``producer_run_id``. Each direction is followed only that
    way, so siblings (other readers of an input) are not pulled in."""
    records: dict[int, RunRecord] = {center.id: center}
    order = [center.id]
    frontier: dict[str, list[RunRecord]] = {"up": [center], "down": [center]}
    for _ in range(depth):
        if len(records) >= max_nodes:
            break
        found: dict[int, RunRecord] = {}
        directions: dict[int, set[str]] = defaultdict(set)
        for direction, fetch in (("up", upstream), ("down", downstream)):
            for run in frontier[direction]:
                for other in fetch(run.id):
                    if other.id not in records:
                        found.setdefault(other.id, other)
                        directions[other.id].add(direction)
        frontier = {"up": [], "down": []}
        for run_id in sorted(found)[:max(max_nodes - len(records), 0)]:
            records[run_id] = found[run_id]
            order.append(run_id)
            for direction in sorted(directions[run_id]):
                frontier[direction].append(found[run_id])
    names: dict[tuple[int, int], set[str]] = defaultdict(set)
    for run_id in order:
        for inp in records[run_id].inputs:
            producer = inp.producer_run_id
            if producer is not None and producer in records and producer != run_id:
                names[(producer, run_id)].add(inp.name)
    nodes = [_node(records[run_id], run_id == center.id) for run_id in order]
    edges = [Edge(s, t, ", ".join(sorted(names[(s, t)]))) for s, t in sorted(names)]
    return nodes, edges


# -- layout -------------------------------------------------------------------------------------

def _back_edges(ids: Sequence[int], edges: Sequence[Edge]) -> set[int]:
    """Indices of the edges a depth-first search in id order finds going back to a run still on
    its stack. Reversing exactly these makes the graph acyclic."""
    succ: dict[int, list[tuple[int, int]]] = defaultdict(list)
    for i, e in enumerate(edges):
        if e.source != e.target:
            succ[e.source].append((e.target, i))
    for targets in succ.values():
        targets.sort()
    state: dict[int, int] = {}   # 1: on the stack, 2: finished
    back: set[int] = set()
    for root in ids:
        if root in state:
            continue
        state[root] = 1
        stack = [(root, iter(succ[root]))]
        while stack:
            v, todo = stack[-1]
            for w, i in todo:
                if state.get(w) == 1:
                    back.add(i)
                elif w not in state:
                    state[w] = 1
                    stack.append((w, iter(succ[w])))
                    break
            else:
                state[v] = 2
                stack.pop()
    return back


def _layers(ids: Sequence[int], arcs: Sequence[tuple[int, int]]) -> dict[int, int]:
    """Longest path from the sources of an acyclic graph: each run one layer right of its
    furthest producer."""
    out: dict[int, list[int]] = defaultdict(list)
    indegree = dict.fromkeys(ids, 0)
    for a, b in arcs:
        out[a].append(b)
        indegree[b] += 1
    layer = dict.fromkeys(ids, 0)
    ready = deque(v for v in ids if indegree[v] == 0)
    while ready:
        v = ready.popleft()
        for w in out[v]:
            layer[w] = max(layer[w], layer[v] + 1)
            indegree[w] -= 1
            if indegree[w] == 0:
                ready.append(w)
    return layer


def _crossings(groups: Sequence[Sequence[tuple[tuple, tuple]]], pos: dict[tuple, int]) -> int:
    """Edge crossings between consecutive layers (inversions of the lower ends)."""
    total = 0
    for group in groups:
        seen: list[int] = []
        for _, b in sorted((pos[a], pos[b]) for a, b in group):
            total += len(seen) - bisect_right(seen, b)
            insort(seen, b)
    return total


def _reorder(row: list[tuple], neighbours: dict[tuple, list[tuple]], pos: dict[tuple, int]) -> None:
    """Sort one layer by the mean position of each vertex's neighbours in the adjacent layer."""
    def key(item: tuple[int, tuple]) -> tuple[float, int]:
        i, v = item
        ns = neighbours.get(v)
        return (sum(pos[n] for n in ns) / len(ns) if ns else float(i), i)
    row[:] = [v for _, v in sorted(enumerate(row), key=key)]
    for i, v in enumerate(row):
        pos[v] = i


def layout_graph(nodes: Sequence[Node], edges: Sequence[Edge], *, node_width: float = 190,
                 node_height: float = 44, layer_gap: float = 90, node_gap: float = 18) -> Layout:
    """Place the graph left to right: producers in a layer left of their consumers, runs in a
    layer ordered to avoid crossings, every layer centred vertically.

    Cycles (possible with lineage by value hash) are broken for layering only; edges that then
    point backwards run through a band above the drawing. Long edges pass through reserved
    slots, not through boxes. Edges with an end not in ``nodes`` are dropped; nodes keep their
    given order (first of a repeated id wins)."""
    by_id: dict[int, Node] = {}
    for n in nodes:
        by_id.setdefault(n.id, n)
    if not by_id:
        return Layout((), (), 2 * MARGIN, 2 * MARGIN)
    ids = sorted(by_id)
    kept = [e for e in edges if e.source in by_id and e.target in by_id]
    back = _back_edges(ids, kept)
    forward = [i for i, e in enumerate(kept) if i not in back and e.source != e.target]
    arcs = [(kept[i].source, kept[i].target) for i in forward]
    arcs += [(kept[i].target, kept[i].source) for i in sorted(back)]
    layer = _layers(ids, arcs)

    # Vertices are (run_id,) for runs and (source, target, edge index, layer) for the slots a
    # long edge takes in the layers it crosses; sorting them gives the starting id order.
    rows: list[list[tuple]] = [[] for _ in range(max(layer.values()) + 1)]
    for v in ids:
        rows[layer[v]].append((v,))
    groups: list[list[tuple[tuple, tuple]]] = [[] for _ in rows]
    chains: dict[int, list[tuple]] = {}
    for i in forward:
        e = kept[i]
        prev: tuple = (e.source,)
        chains[i] = []
        for k in range(layer[e.source] + 1, layer[e.target]):
            slot = (e.source, e.target, i, k)
            rows[k].append(slot)
            chains[i].append(slot)
            groups[k - 1].append((prev, slot))
            prev = slot
        groups[layer[e.target] - 1].append((prev, (e.target,)))
    for row in rows:
        row.sort()

    preds: dict[tuple, list[tuple]] = defaultdict(list)
    succs: dict[tuple, list[tuple]] = defaultdict(list)
    for a, b in (pair for group in groups for pair in group):
        succs[a].append(b)
        preds[b].append(a)
    pos = {v: i for row in rows for i, v in enumerate(row)}
    best, fewest = [list(r) for r in rows], _crossings(groups, pos)
    for _ in range(_SWEEPS):
        if fewest == 0:
            break
        for row in rows[1:]:
            _reorder(row, preds, pos)
        for row in reversed(rows[:-1]):
            _reorder(row, succs, pos)
        count = _crossings(groups, pos)
        if count < fewest:
            best, fewest = [list(r) for r in rows], count

    def height(v: tuple) -> float:
        return node_height if len(v) == 1 else _DUMMY_HEIGHT

    def column(k: int) -> float:
        return MARGIN + k * (node_width + layer_gap)

    totals = [sum(height(v) for v in row) + node_gap * (len(row) - 1) for row in best]
    top = MARGIN + (_LANE if back else 0.0)
    mid: dict[tuple, float] = {}       # vertical centre of every vertex
    placed: dict[int, PlacedNode] = {}
    for k, row in enumerate(best):
        y = top + (max(totals) - totals[k]) / 2
        runs = 0
        for v in row:
            mid[v] = y + height(v) / 2
            if len(v) == 1:
                placed[v[0]] = PlacedNode(by_id[v[0]], k, runs, column(k), y, node_width,
                                          node_height)
                runs += 1
            y += height(v) + node_gap

    bend = min(layer_gap / 2, MARGIN - 4)
    placed_edges = []
    for i, e in enumerate(kept):
        s, t = placed[e.source], placed[e.target]
        start = (s.x + s.width, s.y + s.height / 2)
        end = (t.x, t.y + t.height / 2)
        if i in chains:
            inner = [p for slot in chains[i] for p in
                     ((column(slot[3]), mid[slot]), (column(slot[3]) + node_width, mid[slot]))]
            points = (start, *inner, end)
        else:   # backwards or onto itself: up, along a band above, and down into the target
            lane = MARGIN + _LANE / 2 if i in back else s.y - node_gap / 2
            points = (start, (start[0] + bend, lane), (end[0] - bend, lane), end)
        (ax, ay), (bx, by) = points[len(points) // 2 - 1], points[len(points) // 2]
        placed_edges.append(PlacedEdge(e, points, (ax + bx) / 2, (ay + by) / 2))
    width = 2 * MARGIN + len(best) * node_width + (len(best) - 1) * layer_gap
    return Layout(tuple(placed[n] for n in by_id), tuple(placed_edges), width,
                  top + max(totals) + MARGIN)


# -- drawing ------------------------------------------------------------------------------------

def _num(value: float) -> str:
    return f"{value:.2f}".rstrip("0").rstrip(".")


def _path(points: Sequence[tuple[float, float]]) -> str:
    """Cubic Bézier segments that leave and enter every point horizontally."""
    d = [f"M {_num(points[0][0])} {_num(points[0][1])}"]
    for (px, py), (qx, qy) in zip(points, points[1:], strict=False):
        cx = _num((px + qx) / 2)
        d.append(f"C {cx} {_num(py)}, {cx} {_num(qy)}, {_num(qx)} {_num(qy)}")
    return " ".join(d)


def _darken(colour: str, factor: float = 0.6) -> str:
    r, g, b = (int(colour[i:i + 2], 16) for i in (1, 3, 5))
    return "#{:02x}{:02x}{:02x}".format(*(int(c * factor) for c in (r, g, b)))


def render_svg(layout: Layout, *, css_class: str = "tc-lineage-svg") -> str:
    """A self-contained SVG of a layout (no scripts, no external styles). Every text is
    escaped, since labels come from user task and variable names. Same layout, same string."""
    esc = html.escape
    w, h = _num(layout.width), _num(layout.height)
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" '
           f'viewBox="0 0 {w} {h}" class="{esc(css_class)}" '
           'font-family="sans-serif" font-size="12">',
           '<defs><marker id="tc-lineage-arrow" viewBox="0 0 10 10" refX="10" refY="5" '
           'markerWidth="7" markerHeight="7" orient="auto">'
           f'<path class="tc-lineage-arrow" d="M 0 0 L 10 5 L 0 10 z" fill="{_EDGE_COLOUR}"/>'
           '</marker></defs>']
    paths, labels = [], []
    for pe in layout.edges:
        e = pe.edge
        dash = ' stroke-dasharray="5 3"' if pe.points[-1][0] < pe.points[0][0] else ""
        paths.append(f'<path class="tc-lineage-edge" data-source="{e.source}" '
                     f'data-target="{e.target}" d="{_path(pe.points)}"{dash} '
                     'marker-end="url(#tc-lineage-arrow)"/>')
        if e.label:
            tip = f"<title>{esc(e.label)}</title>" if len(e.label) > _EDGE_LABEL_CHARS else ""
            labels.append(f'<text class="tc-lineage-edge-label" x="{_num(pe.label_x)}" '
                          f'y="{_num(pe.label_y + 4)}">'
                          f'{esc(_clip(e.label, _EDGE_LABEL_CHARS))}{tip}</text>')
    # labels after all edges, with a white halo, so no edge is drawn over a label
    out += [f'<g class="tc-lineage-edges" fill="none" stroke="{_EDGE_COLOUR}" stroke-width="1.5">',
            *paths, "</g>",
            '<g text-anchor="middle" fill="#495057" stroke="#ffffff" stroke-width="4" '
            'stroke-linejoin="round" paint-order="stroke">', *labels, "</g>"]
    for pn in layout.nodes:
        n = pn.node
        fill, stroke = status_colour(n.status)
        cls = "tc-lineage-node tc-lineage-selected" if n.selected else "tc-lineage-node"
        stroke, width = (_darken(stroke), 3.0) if n.selected else (stroke, 1.5)
        cy = pn.y + pn.height / 2
        label_y = cy - 3 if n.sublabel else cy + 4
        title = f"{n.label} ({n.sublabel})" if n.sublabel else n.label
        out.append(f'<g class="{cls}" data-run-id="{n.id}"><title>{esc(title)}</title>'
                   f'<rect x="{_num(pn.x)}" y="{_num(pn.y)}" width="{_num(pn.width)}" '
                   f'height="{_num(pn.height)}" rx="6" ry="6" fill="{fill}" '
                   f'stroke="{stroke}" stroke-width="{width}"/>'
                   f'<text x="{_num(pn.x + 10)}" y="{_num(label_y)}" font-weight="600" '
                   f'fill="#212529">{esc(n.label)}</text>')
        if n.sublabel:
            out.append(f'<text x="{_num(pn.x + 10)}" y="{_num(cy + 12)}" font-size="11" '
                       f'fill="#495057">{esc(n.sublabel)}</text>')
        out.append("</g>")
    out.append("</svg>")
    return "\n".join(out)
