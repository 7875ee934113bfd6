"""The lineage view's pure helpers: collecting, layering and drawing the graph (no database)."""

from __future__ import annotations

import xml.etree.ElementTree as ET
from datetime import datetime

import pytest

from taskcache.browser.lineage import (
    Edge,
    Layout,
    Node,
    layout_graph,
    lineage_graph,
    render_svg,
    status_colour,
)
from taskcache.records import InputRecord, RunRecord

SVG = "{http://www.w3.org/2000/svg}"
T0 = datetime(2024, 1, 1, 12, 0, 0)


def make_run(run_id: int, task: str = "step", status: str = "completed",
             duration: float | None = 1.2,
             inputs: tuple[tuple[str, int | None], ...] = ()) -> RunRecord:
    """A complete RunRecord; ``inputs`` are (name, producer_run_id) pairs."""
    return RunRecord(
        id=run_id, task=task, kind="cell", fingerprint=f"fp{run_id}", code_hash=f"c{run_id}",
        status=status, created_at=T0, started_at=T0, finished_at=T0, duration=duration,
        source="x = 1", tags=(), user_version=None, error_type=None, error_message=None,
        traceback=None, host="host", pid=1, env={}, lease_owner=None, lease_expires_at=None,
        hit_count=0, last_hit_at=None, parent_run_id=None,
        inputs=tuple(InputRecord(name=name, value_hash=f"h-{name}-{producer}", type_name="int",
                                 producer_run_id=producer) for name, producer in inputs))


class FakeCatalog:
    """upstream/downstream over a dict of runs, derived from the inputs like the catalog does."""

    def __init__(self, runs: list[RunRecord]) -> None:
        self.runs = {r.id: r for r in runs}
        self.calls: list[tuple[str, int]] = []

    def upstream(self, run_id: int) -> list[RunRecord]:
        self.calls.append(("up", run_id))
        ids = {i.producer_run_id for i in self.runs[run_id].inputs} - {None}
        return [self.runs[i] for i in sorted(ids, reverse=True)]   # order must not matter

    def downstream(self, run_id: int) -> list[RunRecord]:
        self.calls.append(("down", run_id))
        return [r for r in self.runs.values()
                if any(i.producer_run_id == run_id for i in r.inputs)]


def nodes_for(ids: list[int]) -> list[Node]:
    return [Node(i, f"#{i} t") for i in ids]


def edges_for(pairs: list[tuple[int, int]]) -> list[Edge]:
    return [Edge(a, b, f"v{a}_{b}") for a, b in pairs]


def pseudo_random_graph(n: int = 60) -> tuple[list[Node], list[Edge]]:
    """A deterministic messy DAG: every node reads from one to three earlier nodes."""
    seed = 12345
    pairs = set()
    for v in range(1, n):
        for _ in range(1 + v % 3):
            seed = (seed * 1103515245 + 12345) % 2**31
            pairs.add((seed % v, v))
    return nodes_for(list(range(n))), edges_for(sorted(pairs))


def crossings(layout: Layout) -> int:
    """Crossings between consecutive layers, counted from the placed nodes."""
    where = {p.node.id: (p.layer, p.order) for p in layout.nodes}
    segs = [(where[e.edge.source], where[e.edge.target]) for e in layout.edges]
    segs = [(a[1], b[1], a[0]) for a, b in segs if b[0] == a[0] + 1]
    return sum(1 for i, (a1, b1, l1) in enumerate(segs) for a2, b2, l2 in segs[i + 1:]
               if l1 == l2 and (a1 - a2) * (b1 - b2) < 0)


def boxes_overlap(a, b) -> bool:
    return (a.x < b.x + b.width and b.x < a.x + a.width
            and a.y < b.y + b.height and b.y < a.y + a.height)


# -- layout -------------------------------------------------------------------------------------

def test_every_dag_edge_goes_to_a_later_layer() -> None:
    nodes, edges = pseudo_random_graph()
    layout = layout_graph(nodes, edges)
    layer = {p.node.id: p.layer for p in layout.nodes}
    assert len(layout.edges) == len(edges)
    for e in edges:
        assert layer[e.source] < layer[e.target], e
    # longest path: every node that reads something sits right after its furthest producer
    for p in layout.nodes:
        producers = [layer[e.source] for e in edges if e.target == p.node.id]
        assert p.layer == (max(producers) + 1 if producers else 0)


def test_cycle_terminates_and_places_every_node_once() -> None:
    nodes = nodes_for([1, 2, 3])
    edges = edges_for([(1, 2), (2, 3), (3, 1)])
    layout = layout_graph(nodes, edges)
    assert sorted(p.node.id for p in layout.nodes) == [1, 2, 3]
    assert sorted(p.layer for p in layout.nodes) == [0, 1, 2]   # DFS from 1 reverses 3 -> 1
    assert [pe.edge for pe in layout.edges] == edges               # the back edge is kept
    back = layout.edges[2]
    assert back.points[0][0] > back.points[-1][0]
    # routed above every box, and the label sits on that route
    top = min(p.y for p in layout.nodes)
    assert all(y < top for _, y in back.points[1:-1])
    assert back.label_y < top
    assert 0 <= back.label_x <= layout.width


def test_two_cycle_and_self_loop_survive() -> None:
    layout = layout_graph(nodes_for([1, 2]), edges_for([(1, 2), (2, 1), (2, 2)]))
    assert len(layout.nodes) == 2 and len(layout.edges) == 3
    for pe in layout.edges:
        assert len(pe.points) >= 2
        assert all(0 <= x <= layout.width and 0 <= y <= layout.height for x, y in pe.points)


def test_no_two_boxes_overlap_on_a_messy_graph() -> None:
    nodes, edges = pseudo_random_graph()
    layout = layout_graph(nodes, edges)
    assert len(layout.nodes) == 60
    for i, a in enumerate(layout.nodes):
        assert 0 < a.x and a.x + a.width < layout.width
        assert 0 < a.y and a.y + a.height < layout.height
        for b in layout.nodes[i + 1:]:
            assert not boxes_overlap(a, b), (a.node.id, b.node.id)


def test_edge_points_join_source_right_to_target_left() -> None:
    nodes, edges = pseudo_random_graph(20)
    layout = layout_graph(nodes, edges)
    box = {p.node.id: p for p in layout.nodes}
    for pe in layout.edges:
        s, t = box[pe.edge.source], box[pe.edge.target]
        assert pe.points[0] == (s.x + s.width, s.y + s.height / 2)
        assert pe.points[-1] == (t.x, t.y + t.height / 2)
        xs = [x for x, _ in pe.points]
        assert xs == sorted(xs)
        # a long edge runs through the gaps and reserved slots, never through another box
        for x, y in pe.points[1:-1]:
            assert not any(b.x < x < b.x + b.width and b.y <= y <= b.y + b.height
                           for b in layout.nodes)


def test_barycenter_ordering_removes_a_crossing() -> None:
    # id order puts 3 above 4 in the second layer, so 1 -> 4 and 2 -> 3 cross
    nodes = nodes_for([1, 2, 3, 4, 5])
    edges = edges_for([(1, 4), (2, 3), (4, 5)])
    layout = layout_graph(nodes, edges)
    order = {p.node.id: p.order for p in layout.nodes}
    assert order[4] < order[3]
    assert crossings(layout) == 0


def test_ordering_reduces_crossings_on_a_messy_graph() -> None:
    nodes, edges = pseudo_random_graph()
    ordered = crossings(layout_graph(nodes, edges))
    # the same layers in plain id order, for comparison
    layers = {p.node.id: p.layer for p in layout_graph(nodes, edges).nodes}
    rank: dict[int, int] = {}
    for v in sorted(layers):
        rank[v] = sum(1 for w in layers if layers[w] == layers[v] and w < v)
    plain = sum(1 for i, a in enumerate(edges) for b in edges[i + 1:]
                if layers[a.target] == layers[a.source] + 1 == layers[b.target] == layers[b.source] + 1
                and (rank[a.source] - rank[b.source]) * (rank[a.target] - rank[b.target]) < 0)
    assert ordered < plain


def test_layout_is_deterministic() -> None:
    nodes, edges = pseudo_random_graph()
    first = layout_graph(nodes, edges)
    assert layout_graph(list(nodes), list(edges)) == first
    assert render_svg(first) == render_svg(layout_graph(nodes, edges))


def test_layers_are_centred_vertically() -> None:
    layout = layout_graph(nodes_for([1, 2, 3, 4]), edges_for([(1, 2), (1, 3), (1, 4)]))
    box = {p.node.id: p for p in layout.nodes}
    column = [box[2], box[3], box[4]]
    centre = (column[0].y + column[-1].y + column[-1].height) / 2
    assert box[1].y + box[1].height / 2 == pytest.approx(centre)
    assert box[2].x == box[1].x + 190 + 90


def test_edges_to_unknown_nodes_are_ignored() -> None:
    layout = layout_graph(nodes_for([1, 2]), edges_for([(1, 2), (1, 99), (98, 2)]))
    assert [(e.edge.source, e.edge.target) for e in layout.edges] == [(1, 2)]


def test_empty_and_single_node() -> None:
    empty = layout_graph([], [])
    assert empty.nodes == () and empty.edges == ()
    assert empty.width > 0 and empty.height > 0
    ET.fromstring(render_svg(empty))

    single = layout_graph([Node(7, "#7 only")], [])
    (p,) = single.nodes
    assert (p.layer, p.order) == (0, 0)
    assert single.width == pytest.approx(p.x * 2 + p.width)
    assert single.height == pytest.approx(p.y * 2 + p.height)


def test_large_chain_and_fan_completes() -> None:
    pairs = [(i, i + 1) for i in range(99)]                       # a chain of 100
    pairs += [(i % 100, 100 + i) for i in range(0, 200, 2)]       # fans off the chain
    pairs += [(100 + i, 101 + i) for i in range(0, 200, 2)]       # each fan two deep
    pairs += [(101 + i, (i * 7) % 100) for i in range(0, 200, 20) if (i * 7) % 100 > i % 100 + 3]
    layout = layout_graph(nodes_for(list(range(300))), edges_for(pairs))
    assert len(layout.nodes) == 300 and len(layout.edges) == len(pairs)


# -- svg ----------------------------------------------------------------------------------------

def test_svg_parses_and_has_one_group_per_node() -> None:
    nodes = [Node(1, "#1 load", "completed · 1.2 s"), Node(2, "#2 fit", "failed", "failed",
                                                               selected=True),
             Node(3, "#3 plot", "", "weird")]
    edges = [Edge(1, 2, "df"), Edge(2, 3, "model"), Edge(3, 1, "loop")]
    svg = render_svg(layout_graph(nodes, edges), css_class="my-class")
    root = ET.fromstring(svg)
    assert root.tag == f"{SVG}svg" and root.get("class") == "my-class"
    assert root.find(f"{SVG}defs/{SVG}marker") is not None
    groups = [g for g in root.iter(f"{SVG}g") if "tc-lineage-node" in g.get("class", "").split()]
    assert [g.get("data-run-id") for g in groups] == ["1", "2", "3"]
    selected = [g for g in groups if "tc-lineage-selected" in g.get("class").split()]
    assert [g.get("data-run-id") for g in selected] == ["2"]
    rects = {g.get("data-run-id"): g.find(f"{SVG}rect") for g in groups}
    assert rects["1"].get("fill") == status_colour("completed")[0]
    assert rects["3"].get("fill") == status_colour("cancelled")[0]           # unknown -> grey
    assert float(rects["2"].get("stroke-width")) > float(rects["1"].get("stroke-width"))
    assert rects["2"].get("stroke") != status_colour("failed")[1]
    assert groups[0].find(f"{SVG}title").text.startswith("#1 load")
    paths = [p for p in root.iter(f"{SVG}path") if p.get("class") == "tc-lineage-edge"]
    assert len(paths) == 3 and all(p.get("d").startswith("M ") and " C " in p.get("d")
                                   for p in paths)
    assert all(p.get("marker-end") == "url(#tc-lineage-arrow)" for p in paths)
    labels = [t.text for t in root.iter(f"{SVG}text") if t.get("class") == "tc-lineage-edge-label"]
    assert labels == ["df", "model", "loop"]
    assert all(t.find(f"{SVG}title") is None for t in root.iter(f"{SVG}text")
               if t.get("class") == "tc-lineage-edge-label")


def test_svg_escapes_hostile_names() -> None:
    hostile = "<script>alert(1)</script>&"
    run = make_run(1, task=hostile)
    nodes, edges = lineage_graph(run, lambda _: [], lambda _: [])
    nodes.append(Node(2, hostile, hostile))
    edges.append(Edge(1, 2, hostile))
    svg = render_svg(layout_graph(nodes, edges), css_class='x" onload="alert(1)')
    root = ET.fromstring(svg)
    assert not [e for e in root.iter() if "script" in e.tag.lower()]
    assert "onload" not in root.attrib
    assert "<script" not in svg and "&lt;script&gt;" in svg
    texts = [t.text for t in root.iter(f"{SVG}text")]
    assert hostile in texts and f"#1 {hostile[:21]}…" in texts


def _contrast(a: str, b: str) -> float:
    """WCAG contrast ratio of two #rrggbb colours."""
    def luminance(colour: str) -> float:
        channels = [int(colour[i:i + 2], 16) / 255 for i in (1, 3, 5)]
        r, g, b = (c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels)
        return 0.2126 * r + 0.7152 * g + 0.0722 * b
    high, low = sorted((luminance(a), luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def test_status_colours_are_distinct_and_readable() -> None:
    """A status badge's text reads at WCAG AA (4.5:1) on its own fill and on a white page,
    and every status has its own colour (unknown ones look cancelled)."""
    statuses = ("completed", "failed", "running", "pending", "cancelled")
    for status in statuses:
        fill, text = status_colour(status)
        assert _contrast(fill, text) >= 4.5 and _contrast("#ffffff", text) >= 4.5, status
    assert len({status_colour(s) for s in statuses}) == len(statuses)
    assert status_colour("nonsense") == status_colour("cancelled")


# -- collecting ---------------------------------------------------------------------------------

def chain_catalog() -> FakeCatalog:
    """1 -> 2 -> 3 -> 4 -> 5 -> 6, plus 7 reading from 3 and 2 (two names from 3)."""
    runs = [make_run(1, "load")]
    runs += [make_run(i, f"step{i}", inputs=(("x", i - 1),)) for i in range(2, 7)]
    runs.append(make_run(7, "report", status="running", duration=None,
                         inputs=(("model", 3), ("df", 3), ("raw", 2), ("seed", None))))
    return FakeCatalog(runs)


def test_lineage_respects_depth_and_marks_the_centre() -> None:
    cat = chain_catalog()
    nodes, edges = lineage_graph(cat.runs[4], cat.upstream, cat.downstream, depth=1)
    assert [n.id for n in nodes] == [4, 3, 5]
    assert [n.id for n in nodes if n.selected] == [4]
    assert [(e.source, e.target) for e in edges] == [(3, 4), (4, 5)]

    nodes, edges = lineage_graph(cat.runs[4], cat.upstream, cat.downstream, depth=2)
    assert [n.id for n in nodes] == [4, 3, 5, 2, 6]      # by distance, then id; 7 is a sibling
    assert [(e.source, e.target) for e in edges] == [(2, 3), (3, 4), (4, 5), (5, 6)]

    nodes, _ = lineage_graph(cat.runs[4], cat.upstream, cat.downstream, depth=0)
    assert [n.id for n in nodes] == [4]


def test_lineage_stops_at_max_nodes_closest_first() -> None:
    cat = chain_catalog()
    nodes, edges = lineage_graph(cat.runs[3], cat.upstream, cat.downstream, depth=5,
                                 max_nodes=4)
    assert [n.id for n in nodes] == [3, 2, 4, 7]
    assert all(e.source in {2, 3, 4, 7} and e.target in {2, 3, 4, 7} for e in edges)
    calls = len(cat.calls)
    lineage_graph(cat.runs[3], cat.upstream, cat.downstream, depth=5, max_nodes=1)
    assert len(cat.calls) == calls                          # full already: nothing fetched


def test_lineage_merges_names_and_uses_producer_ids() -> None:
    cat = chain_catalog()
    nodes, edges = lineage_graph(cat.runs[7], cat.upstream, cat.downstream, depth=1)
    assert [n.id for n in nodes] == [7, 2, 3]
    assert edges == [Edge(2, 3, "x"), Edge(2, 7, "raw"), Edge(3, 7, "df, model")]
    report = nodes[0]
    assert report == Node(7, "#7 report", "running", "running", True)
    assert nodes[1].sublabel == "completed · 1.2 s" and not nodes[1].selected


def test_lineage_labels_truncate_long_task_names() -> None:
    run = make_run(12, task="a_really_long_task_name_for_cleaning", status="failed",
                   duration=0.25)
    (node,), edges = lineage_graph(run, lambda _: [], lambda _: [])
    assert node.label == "#12 a_really_long_task_na…" and len(node.label) == 4 + 22
    assert node.sublabel == "failed · 250 ms" and node.status == "failed"
    assert edges == []


def test_lineage_survives_cycles() -> None:
    runs = [make_run(1, inputs=(("c", 3),)), make_run(2, inputs=(("a", 1),)),
            make_run(3, inputs=(("b", 2),))]
    cat = FakeCatalog(runs)
    nodes, edges = lineage_graph(runs[0], cat.upstream, cat.downstream, depth=10)
    assert sorted(n.id for n in nodes) == [1, 2, 3]
    assert [(e.source, e.target) for e in edges] == [(1, 2), (2, 3), (3, 1)]
    layout = layout_graph(nodes, edges)
    assert len(layout.nodes) == 3 and len(layout.edges) == 3


def test_long_edge_labels_are_clipped_with_the_full_text_as_tooltip() -> None:
    names = "alpha, beta, gamma, delta"
    root = ET.fromstring(render_svg(layout_graph(nodes_for([1, 2]), [Edge(1, 2, names)])))
    (label,) = [t for t in root.iter(f"{SVG}text") if t.get("class") == "tc-lineage-edge-label"]
    assert label.text == "alpha, beta, gamm…"
    assert label.find(f"{SVG}title").text == names
