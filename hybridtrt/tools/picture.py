"""A picture of a partitioned graph: which nodes run in which TensorRT engine, as SVG or HTML."""

from __future__ import annotations

import dataclasses
import html
import os
from collections import Counter, deque
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import networkx as nx
import onnx

from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.hybrid import HybridModel
from hybridtrt.core.inline import inline_engines
from hybridtrt.compiler.pipeline import analyze_clusters
from hybridtrt.core.report import OutsideNode, Report
from hybridtrt.config import TensorRTConfig
from hybridtrt.errors import ConfigError, InternalError, SaveError
from hybridtrt.core.files import write_atomically

__all__ = [
    "GraphView",
    "PictureNode",
    "picture_format",
    "render_file",
    "render_html",
    "render_svg",
    "view_of_hybrid",
    "view_of_model",
    "write_picture",
]


@dataclasses.dataclass(frozen=True)
class PictureNode:
    """One ONNX node as the picture shows it.

    Attributes:
        name: The node's name.
        op_type: Its op type.
        group: The engine that runs it, or "" when it stays in ONNX Runtime.
        reason: Why it stays in ONNX Runtime ("" for engine nodes).
    """

    name: str
    op_type: str
    group: str
    reason: str


@dataclasses.dataclass(frozen=True)
class GraphView:
    """What the picture draws: the nodes with their engine, the data edges and the report.

    Attributes:
        title: Names the model (its file name, or "<ModelProto>").
        nodes: Every node of the main graph, in graph order.
        edges: ``(producer, consumer)`` node indices; sorted, no repeats.
        engines: Engine names in number order (``tensorrt_engine_0, 1, ...``), which picks
            their colours; every non-empty group is one of them.
        report: The partition report (summary, op table, engines).
    """

    title: str
    nodes: tuple[PictureNode, ...]
    edges: tuple[tuple[int, int], ...]
    engines: tuple[str, ...]
    report: Report

    def __post_init__(self) -> None:
        count = len(self.nodes)
        bad = [(u, v) for u, v in self.edges if not (0 <= u < count and 0 <= v < count) or u == v]
        if bad:
            raise InternalError(f"edges {bad[:3]} do not join two different nodes of {count}")
        unknown = sorted({n.group for n in self.nodes if n.group} - set(self.engines))
        if unknown:
            raise InternalError(f"groups {unknown} are not among the engines {list(self.engines)}")


def view_of_model(
    model: onnx.ModelProto | str | os.PathLike[str], config: TensorRTConfig | None = None
) -> GraphView:
    """The view of a plain ONNX model as ``convert`` would partition it (nothing is built).

    Args:
        model: Path of an ``.onnx`` file or a ModelProto.
        config: ``disable_ops``, ``min_subgraph_size`` and shape ranges, as for ``convert``.

    Raises:
        ModelLoadError, UnsupportedModelError, ConfigError: As ``analyze`` raises them.
    """
    report, clustering = analyze_clusters(model, config)
    if len(report.engines) != len(clustering.parts):
        raise InternalError(f"{len(clustering.parts)} clusters but {len(report.engines)} engines "
                            "in the report")
    group = {n: e.name for p, e in zip(clustering.parts, report.engines) for n in p.nodes}
    reasons = _reasons(clustering.outside)
    nodes = tuple(_node(proto, group.get(k, ""), reasons)
                  for k, proto in enumerate(clustering.index.nodes))
    return GraphView(report.source, nodes, tuple(clustering.index.edges()),
                     tuple(e.name for e in report.engines), report)


def view_of_hybrid(hybrid: HybridModel, title: str | None = None) -> GraphView:
    """The view of a converted model: its engines inlined back into the full node graph.

    Args:
        hybrid: A hybrid model (``convert``'s result or ``hybridtrt.load``'s).
        title: Names the picture (default: the source named in the stored report).

    Raises:
        FormatError: The model carries no report, or an engine is not wrapped as it should be.
    """
    report = hybrid.report()
    plain = inline_engines(hybrid.model)
    owner = {_key(n): r.name for r in hybrid.engines for n in r.subgraph.node}
    reasons = _reasons(report.outside)
    nodes = tuple(_node(n, owner.get(_key(n), ""), reasons) for n in plain.graph.node)
    return GraphView(title or report.source, nodes, tuple(GraphIndex(plain).edges()),
                     tuple(e.name for e in report.engines), report)


def _key(node: onnx.NodeProto) -> tuple[str, tuple[str, ...]]:
    """Identifies a node even when names are empty or repeated (output names never repeat)."""
    return node.name, tuple(node.output)


def _reasons(outside: Iterable[OutsideNode]) -> dict[str, deque[str]]:
    found: dict[str, deque[str]] = {}
    for node in outside:
        found.setdefault(node.name, deque()).append(node.reason)
    return found


def _node(proto: onnx.NodeProto, group: str, reasons: Mapping[str, deque[str]]) -> PictureNode:
    queue = reasons.get(proto.name)
    reason = queue.popleft() if not group and queue else ""
    return PictureNode(proto.name, proto.op_type, group, reason)


# --- boxes: chains of nodes collapsed, constants folded into their only consumer -------------

_CONSTANT_OPS = frozenset({"Constant", "ConstantOfShape"})
_MIN_CHAIN = 3


@dataclasses.dataclass(frozen=True)
class _Box:
    """What one drawn box stands for: a chain of nodes (``path``) and the constants they read."""

    path: tuple[int, ...]
    members: tuple[int, ...]
    group: str


def _boxes(view: GraphView) -> tuple[list[_Box], list[tuple[int, int]]]:
    """Boxes in order of their first node, and the edges between them (sorted, no repeats)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(len(view.nodes)))
    graph.add_edges_from(view.edges)
    hosts: dict[int, list[int]] = {}
    for v, node in enumerate(view.nodes):
        if node.op_type in _CONSTANT_OPS and graph.in_degree(v) == 0 and graph.out_degree(v) == 1:
            (host,) = graph.successors(v)
            if view.nodes[host].group == node.group:
                hosts.setdefault(host, []).append(v)
    graph.remove_nodes_from([c for folded in hosts.values() for c in folded])
    boxes = []
    for path in _chains(view, graph):
        pieces = [path] if len(path) >= _MIN_CHAIN else [[v] for v in path]
        for piece in pieces:
            members = tuple(m for v in piece for m in (*hosts.get(v, ()), v))
            boxes.append(_Box(tuple(piece), members, view.nodes[piece[0]].group))
    boxes.sort(key=lambda b: b.path[0])
    box_of = {m: k for k, box in enumerate(boxes) for m in box.members}
    edges = sorted({(box_of[u], box_of[v]) for u, v in view.edges if box_of[u] != box_of[v]})
    return boxes, edges


def _chains(view: GraphView, graph: nx.DiGraph) -> list[list[int]]:
    """Maximal paths whose every link is the only way out of one node and into the next, within
    one group (contracting such links never makes a cycle)."""
    link = {}
    for u in sorted(graph.nodes):
        if graph.out_degree(u) == 1:
            (v,) = graph.successors(u)
            if graph.in_degree(v) == 1 and view.nodes[u].group == view.nodes[v].group:
                link[u] = v
    targets = set(link.values())
    chains = []
    for start in sorted(graph.nodes):
        if start not in targets:
            path = [start]
            while path[-1] in link:
                path.append(link[path[-1]])
            chains.append(path)
    return chains


# --- layout: layers, crossing reduction, coordinates ----------------------------------------

_BOX_H = 40.0
_LAYER_GAP = 46.0
_GAP = 18.0
_DUMMY_W = 4.0
_DUMMY_GAP = 6.0
_MARGIN = 24.0
_MAX_W = 270.0
_OP_CHAR = 7.0
_NAME_CHAR = 6.0
_SWEEPS = 3


@dataclasses.dataclass(frozen=True)
class _Layout:
    """Boxes placed on layers; items past the boxes are the bends of long edges.

    Attributes:
        boxes: The boxes.
        layer: Layer of each item.
        x: Horizontal centre of each item.
        width: Width of each item.
        rows: Items of each layer, left to right.
        routes: Per box edge, the items it passes through (its two boxes at the ends).
    """

    boxes: tuple[_Box, ...]
    layer: tuple[int, ...]
    x: tuple[float, ...]
    width: tuple[float, ...]
    rows: tuple[tuple[int, ...], ...]
    routes: tuple[tuple[int, ...], ...]

    @property
    def size(self) -> tuple[float, float]:
        right = max((x + w / 2 for x, w in zip(self.x, self.width)), default=0.0)
        return right + _MARGIN, len(self.rows) * (_BOX_H + _LAYER_GAP) - _LAYER_GAP + 2 * _MARGIN


def _layout(view: GraphView) -> _Layout:
    boxes, edges = _boxes(view)
    layer = _layers(len(boxes), edges)
    routes, up, down = _bends(layer, edges)
    width = [_box_width(view, b) for b in boxes] + [_DUMMY_W] * (len(layer) - len(boxes))
    rows = _order(layer, up, down)
    x = _place(rows, up, down, width, len(boxes))
    return _Layout(tuple(boxes), tuple(layer), tuple(x), tuple(width),
                   tuple(tuple(r) for r in rows), tuple(routes))


def _layers(count: int, edges: Sequence[tuple[int, int]]) -> list[int]:
    """Topological generations, then every box pulled down to just above its first consumer
    (so a value computed early and read late does not cross the whole picture)."""
    graph = nx.DiGraph()
    graph.add_nodes_from(range(count))
    graph.add_edges_from(edges)
    layer = [0] * count
    for depth, generation in enumerate(nx.topological_generations(graph)):
        for v in generation:
            layer[v] = depth
    for v in reversed(list(nx.lexicographical_topological_sort(graph))):
        below = [layer[s] for s in graph.successors(v)]
        if below:
            layer[v] = max(layer[v], min(below) - 1)
    return layer


def _bends(
    layer: list[int], edges: Sequence[tuple[int, int]]
) -> tuple[list[tuple[int, ...]], list[list[int]], list[list[int]]]:
    """Add a bend item on every layer a long edge crosses (appending to ``layer``); the long
    edges of one box share their bends. Returns the routes and both adjacency lists."""
    bend: dict[tuple[int, int], int] = {}
    routes = []
    for a, b in edges:
        path = [a]
        for depth in range(layer[a] + 1, layer[b]):
            if (a, depth) not in bend:
                bend[a, depth] = len(layer)
                layer.append(depth)
            path.append(bend[a, depth])
        routes.append(tuple(path + [b]))
    links = sorted({(s, t) for path in routes for s, t in zip(path, path[1:])})
    up: list[list[int]] = [[] for _ in layer]
    down: list[list[int]] = [[] for _ in layer]
    for s, t in links:
        down[s].append(t)
        up[t].append(s)
    return routes, up, down


def _order(
    layer: Sequence[int], up: Sequence[list[int]], down: Sequence[list[int]]
) -> list[list[int]]:
    """Order each layer by the barycenter of its neighbours, sweeping down then up."""
    rows: list[list[int]] = [[] for _ in range(max(layer, default=-1) + 1)]
    for item, depth in enumerate(layer):
        rows[depth].append(item)
    pos = [0.0] * len(layer)

    def sort(depth: int, neighbours: Sequence[list[int]]) -> None:
        def key(item: int) -> tuple[float, float]:
            near = neighbours[item]
            return (sum(pos[n] for n in near) / len(near) if near else pos[item], pos[item])
        rows[depth].sort(key=key)
        for rank, item in enumerate(rows[depth]):
            pos[item] = float(rank)

    for depth in range(len(rows)):
        sort(depth, up)
    for _ in range(_SWEEPS):
        for depth in range(len(rows) - 2, -1, -1):
            sort(depth, down)
        for depth in range(1, len(rows)):
            sort(depth, up)
    return rows


def _place(rows: Sequence[list[int]], up: Sequence[list[int]], down: Sequence[list[int]],
           width: Sequence[float], boxes: int) -> list[float]:
    """Centres close to the mean of each item's neighbours, in order and without overlaps."""
    x = [0.0] * len(width)

    def gaps(row: Sequence[int]) -> list[float]:
        return [0.0] + [(width[a] + width[b]) / 2
                        + (_GAP if a < boxes and b < boxes else _DUMMY_GAP)
                        for a, b in zip(row, row[1:])]

    def align(row: Sequence[int], neighbours: Sequence[list[int]] | None) -> None:
        wanted = [sum(x[n] for n in neighbours[i]) / len(neighbours[i])
                  if neighbours and neighbours[i] else x[i] for i in row]
        for item, value in zip(row, _pack(wanted, gaps(row))):
            x[item] = value

    for row in rows:
        align(row, None)
    for _ in range(_SWEEPS):
        for row in rows[1:]:
            align(row, up)
        for row in reversed(rows[:-1]):
            align(row, down)
    for row in rows[1:]:
        align(row, up)
    left = min((x[i] - width[i] / 2 for i in range(len(x))), default=0.0)
    return [value - left + _MARGIN for value in x]


def _pack(wanted: Sequence[float], gaps: Sequence[float]) -> list[float]:
    """Positions closest (least squares) to ``wanted`` with ``x[i] - x[i-1] >= gaps[i]``:
    isotonic regression by pooling adjacent violators, after shifting out the gaps."""
    offset, total = [], 0.0
    for gap in gaps:
        total += gap
        offset.append(total)
    blocks: list[list[float]] = []  # [sum, count]
    for value, shift in zip(wanted, offset):
        blocks.append([value - shift, 1.0])
        while len(blocks) > 1 and blocks[-2][0] * blocks[-1][1] > blocks[-1][0] * blocks[-2][1]:
            total, count = blocks.pop()
            blocks[-1][0] += total
            blocks[-1][1] += count
    base = [s / c for s, c in blocks for _ in range(int(c))]
    return [b + o for b, o in zip(base, offset)]


# --- SVG ------------------------------------------------------------------------------------

# Okabe & Ito's palette, told apart with every common colour-vision deficiency, in an order
# where neighbouring engines never get the two blues or the two oranges.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
_ORT = ("#8a8a8a", "#ececec")
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_TOOLTIP_NAMES = 40


def _esc(text: object) -> str:
    return html.escape(str(text), quote=True)


def _colours(view: GraphView, group: str) -> tuple[str, str]:
    """(stroke, fill) of a group: a palette colour and its light tint; grey for ONNX Runtime."""
    if not group:
        return _ORT
    colour = _PALETTE[view.engines.index(group) % len(_PALETTE)]
    rgb = [int(colour[k:k + 2], 16) for k in (1, 3, 5)]
    return colour, "#" + "".join(f"{round(255 - (255 - c) * 0.3):02x}" for c in rgb)


def _labels(view: GraphView, box: _Box) -> tuple[str, str, str]:
    """The box's lines: op type(s) and a node count kept when the ops are cut short, then the
    first node's name."""
    ops = [view.nodes[v].op_type for v in box.path]
    first = view.nodes[box.path[0]].name or "(unnamed)"
    if len(box.path) == 1:
        extra = len(box.members) - 1
        return ops[0], "", first + (f" +{extra} const" if extra else "")
    shown = " → ".join(ops[:3] if len(ops) == 3 else [*ops[:2], "…"])
    return shown, f" ({len(box.members)} nodes)", first


def _box_width(view: GraphView, box: _Box) -> float:
    ops, count, name = _labels(view, box)
    return min(_MAX_W, max(72.0, len(ops + count) * _OP_CHAR + 20, len(name) * _NAME_CHAR + 20))


def _fit(text: str, width: float, char: float) -> str:
    room = int((width - 14) / char)
    return text if len(text) <= room else text[:max(room - 1, 1)] + "…"


def _tooltip(view: GraphView, box: _Box) -> str:
    nodes = [view.nodes[m] for m in box.members]
    lines = [f"{n.name or '(unnamed)'} ({n.op_type})" for n in nodes[:_TOOLTIP_NAMES]]
    if len(nodes) > _TOOLTIP_NAMES:
        lines.append(f"… and {len(nodes) - _TOOLTIP_NAMES} more")
    if len(nodes) > 1:
        lines.insert(0, f"{len(nodes)} nodes:")
    lines.append(f"runs in: TensorRT engine {box.group}" if box.group else "runs in: ONNX Runtime")
    why = Counter(n.reason for n in nodes if n.reason)
    for reason, count in sorted(why.items(), key=lambda item: (-item[1], item[0])):
        lines.append(f"why not TensorRT: {reason}" + (f" (x{count})" if count > 1 else ""))
    return "\n".join(lines)


def _top(layout: _Layout, item: int, header: float) -> float:
    return header + _MARGIN + layout.layer[item] * (_BOX_H + _LAYER_GAP)


def _svg_boxes(view: GraphView, layout: _Layout, header: float) -> list[str]:
    parts = []
    for k, box in enumerate(layout.boxes):
        w = layout.width[k]
        left, top = layout.x[k] - w / 2, _top(layout, k, header)
        stroke, fill = _colours(view, box.group)
        dash = "" if box.group else ' stroke-dasharray="4 3"'
        ops, count, name = _labels(view, box)
        top_line = _fit(ops, w - len(count) * _OP_CHAR, _OP_CHAR) + count
        parts.append(
            f'<g class="node" data-group="{_esc(box.group)}" data-count="{len(box.members)}" '
            f'data-name="{_esc(view.nodes[box.path[0]].name)}" '
            f'transform="translate({left:.1f},{top:.1f})">'
            f"<title>{_esc(_tooltip(view, box))}</title>"
            f'<rect width="{w:.1f}" height="{_BOX_H:.0f}" rx="6" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{2 if box.group else 1.2}"{dash}/>'
            f'<text class="op" x="{w / 2:.1f}" y="17">{_esc(top_line)}</text>'
            f'<text class="name" x="{w / 2:.1f}" y="32">{_esc(_fit(name, w, _NAME_CHAR))}'
            "</text></g>"
        )
    return parts


def _svg_edges(layout: _Layout, header: float) -> list[str]:
    parts = []
    for route in layout.routes:
        first, last = route[0], route[-1]
        points = [(layout.x[first], _top(layout, first, header) + _BOX_H)]
        for bend in route[1:-1]:
            top = _top(layout, bend, header)
            points += [(layout.x[bend], top), (layout.x[bend], top + _BOX_H)]
        points.append((layout.x[last], _top(layout, last, header) - 1.5))
        d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if x0 == x1 and y1 - y0 == _BOX_H:
                d.append(f"L{x1:.1f},{y1:.1f}")
            else:
                mid = (y0 + y1) / 2
                d.append(f"C{x0:.1f},{mid:.1f} {x1:.1f},{mid:.1f} {x1:.1f},{y1:.1f}")
        parts.append(f'<path class="edge" d="{" ".join(d)}" marker-end="url(#hybridtrt-arrow)"/>')
    return parts


def _runs(layout: _Layout) -> list[tuple[str, int, float, float]]:
    """Per layer, the stretches of neighbouring boxes of one engine: (engine, layer, left, right).

    A bend between two boxes of one engine does not break a stretch."""
    runs: list[tuple[str, int, float, float]] = []
    boxes = layout.boxes
    for depth, row in enumerate(layout.rows):
        stretch: list[int] = []
        for item in [*(i for i in row if i < len(boxes)), None]:
            if item is not None and stretch and boxes[item].group == boxes[stretch[0]].group:
                stretch.append(item)
                continue
            if stretch and boxes[stretch[0]].group:
                first, last = stretch[0], stretch[-1]
                runs.append((boxes[first].group, depth, layout.x[first] - layout.width[first] / 2,
                             layout.x[last] + layout.width[last] / 2))
            stretch = [] if item is None else [item]
    return runs


def _svg_regions(view: GraphView, layout: _Layout, header: float) -> tuple[list[str], list[str]]:
    """A tinted area behind each engine's boxes, joined across layers where its stretches meet,
    and the engine's name above its first stretch: (areas, names).

    The shapes of one engine share one group opacity, so where they overlap the tint stays even.
    """
    pad = 8.0
    runs: dict[str, dict[int, list[tuple[float, float]]]] = {}
    for group, depth, left, right in _runs(layout):
        runs.setdefault(group, {}).setdefault(depth, []).append((left - pad, right + pad))
    areas, names = [], []
    for group in (g for g in view.engines if g in runs):
        stroke, _ = _colours(view, group)
        shapes = []
        for depth, spans in runs[group].items():
            top = header + _MARGIN + depth * (_BOX_H + _LAYER_GAP)
            for left, right in spans:
                shapes.append(f'<rect x="{left:.1f}" y="{top - pad:.1f}" rx="10" '
                              f'width="{right - left:.1f}" height="{_BOX_H + 2 * pad:.1f}"/>')
                for low_left, low_right in runs[group].get(depth + 1, ()):
                    join_left, join_right = max(left, low_left), min(right, low_right)
                    if join_right > join_left:
                        shapes.append(f'<rect x="{join_left:.1f}" y="{top + _BOX_H:.1f}" width='
                                      f'"{join_right - join_left:.1f}" height="{_LAYER_GAP:.1f}"/>')
        areas.append(f'<g class="engine-region" data-group="{_esc(group)}" fill="{stroke}" '
                     f'opacity="0.13">{"".join(shapes)}</g>')
        depth, spans = next(iter(runs[group].items()))
        names.append(f'<text class="engine-label" x="{spans[0][0] + 2:.1f}" '
                     f'y="{header + _MARGIN + depth * (_BOX_H + _LAYER_GAP) - pad - 4:.1f}" '
                     f'fill="{stroke}">{_esc(group)}</text>')
    return areas, names


def _group_sizes(view: GraphView) -> list[tuple[str, str, int]]:
    """(group, label, node count) for every engine, then ONNX Runtime."""
    sizes = Counter(n.group for n in view.nodes)
    return [(e, e, sizes[e]) for e in view.engines] + [("", "ONNX Runtime", sizes[""])]


def _svg_header(view: GraphView, width: float) -> tuple[list[str], float]:
    """The title line and the legend, wrapped to ``width``; returns them and their height."""
    trt = sum(1 for n in view.nodes if n.group)
    parts = [f'<text class="title" x="{_MARGIN}" y="{_MARGIN + 4}">{_esc(view.title)}: '
             f"{trt} of {len(view.nodes)} nodes in {len(view.engines)} TensorRT engine(s)</text>"]
    x, y = _MARGIN, _MARGIN + 18
    for group, label, size in _group_sizes(view):
        stroke, fill = _colours(view, group)
        dash = "" if group else ' stroke-dasharray="3 2"'
        text = f"{label} ({size})"
        step = 34 + len(text) * _NAME_CHAR
        if x > _MARGIN and x + step > width - _MARGIN:
            x, y = _MARGIN, y + 22
        parts.append(
            f'<g class="legend-item" data-group="{_esc(group)}" '
            f'transform="translate({x:.1f},{y:.1f})"><rect width="14" height="14" rx="3" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<text class="legend" x="20" y="11">{_esc(text)}</text></g>'
        )
        x += step
    return parts, y + 22


def _svg(view: GraphView, header: bool) -> str:
    layout = _layout(view)
    drawn, height = layout.size
    width = max(drawn, 720.0 if header else 200.0)
    head, top = _svg_header(view, width) if header else ([], 0.0)
    height += top
    areas, names = _svg_regions(view, layout, top)
    style = (f".hybridtrt-picture text{{font-family:{_FONT};text-anchor:middle;fill:#1d1d1f}}"
             ".hybridtrt-picture .op{font-size:12px;font-weight:600}"
             ".hybridtrt-picture .name{font-size:10.5px;fill:#444}"
             ".hybridtrt-picture .title{font-size:15px;font-weight:600;text-anchor:start}"
             ".hybridtrt-picture .legend{font-size:11.5px;text-anchor:start}"
             ".hybridtrt-picture .engine-label{font-size:11px;font-weight:600;text-anchor:start;"
             "paint-order:stroke;stroke:#fff;stroke-width:3px}"
             ".hybridtrt-picture .edge{fill:none;stroke:#6b6b6b;stroke-width:1.2}"
             ".hybridtrt-picture g.node:hover rect{stroke-width:3}")
    return "\n".join([
        f'<svg xmlns="http://www.w3.org/2000/svg" class="hybridtrt-picture" '
        f'width="{width:.0f}" height="{height:.0f}" viewBox="0 0 {width:.0f} {height:.0f}">',
        f"<style>{style}</style>",
        '<defs><marker id="hybridtrt-arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" '
        'markerHeight="7" orient="auto-start-reverse"><path d="M0,0 L10,5 L0,10 z" fill="#6b6b6b"/>'
        "</marker></defs>",
        '<rect width="100%" height="100%" fill="#ffffff"/>',
        *head,
        f'<g class="graph" transform="translate({(width - drawn) / 2:.1f},0)">',
        *areas,
        *_svg_edges(layout, top),
        *_svg_boxes(view, layout, top),
        *names,
        "</g></svg>",
    ])


def render_svg(view: GraphView) -> str:
    """A standalone SVG picture of the view: a title, a legend and the layered graph.

    Chains of three or more nodes of one group, each the only way into the next, become one
    box ("Conv → Relu → … (12 nodes)"); a Constant read only by one node is drawn inside it.
    Every box is a ``<g class="node" data-group=ENGINE data-count=NODES>`` whose ``<title>``
    (the hover tooltip) names its nodes, where they run and why not in TensorRT.
    """
    return _svg(view, header=True) + "\n"


# --- HTML -----------------------------------------------------------------------------------

_CSS = """
:root{color-scheme:light}
body{font-family:system-ui,-apple-system,'Segoe UI',Roboto,Helvetica,Arial,sans-serif;margin:0;
 color:#1d1d1f;background:#f6f7f9;font-size:14px}
main{padding:20px 28px}
h1{font-size:20px;margin:0 0 4px}
h2{font-size:15px;margin:0 0 8px}
.source{color:#555;margin:0 0 16px}
.panels{display:flex;flex-wrap:wrap;gap:16px;margin-bottom:16px}
.panel{background:#fff;border:1px solid #dde1e6;border-radius:8px;padding:12px 14px;
 max-height:300px;overflow:auto}
.panel.ops{flex:1 1 440px}
table{border-collapse:collapse}
th,td{text-align:left;padding:4px 10px 4px 0;border-bottom:1px solid #eceef1;vertical-align:top}
th{font-weight:600;color:#444;position:sticky;top:0;background:#fff}
td.num{text-align:right;font-variant-numeric:tabular-nums}
.swatch{display:inline-block;width:12px;height:12px;border-radius:3px;margin-right:6px;
 vertical-align:-1px;border:2px solid}
.toolbar{display:flex;flex-wrap:wrap;align-items:center;gap:6px 18px;margin-bottom:8px}
.legend{display:flex;flex-wrap:wrap;gap:4px 14px;list-style:none;margin:0;padding:0}
.zoom{margin-left:auto;display:flex;align-items:center;gap:4px}
.zoom button{font:inherit;min-width:32px;padding:3px 8px;border:1px solid #c5cad1;border-radius:5px;
 background:#fff;cursor:pointer}
.zoom button:hover{background:#eef1f5}
#engine-count{font-weight:600}
.hint{color:#666;font-size:12px}
#viewport{height:78vh;overflow:auto;background:#fff;border:1px solid #dde1e6;border-radius:8px;
 cursor:grab}
#viewport.dragging{cursor:grabbing}
#viewport svg{display:block;margin:0 auto}
"""

_SCRIPT = """
(function () {
  var svg = document.querySelector('#viewport svg');
  var groups = {};
  svg.querySelectorAll('g.node').forEach(function (g) {
    var name = g.getAttribute('data-group');
    if (name) { groups[name] = true; }
  });
  var count = Object.keys(groups).length;
  document.getElementById('engine-count').textContent =
    count + (count === 1 ? ' engine' : ' engines');
  var viewport = document.getElementById('viewport');
  var label = document.getElementById('zoom-level');
  var baseW = svg.viewBox.baseVal.width, baseH = svg.viewBox.baseVal.height;
  var zoom = 1;
  function setZoom(z, clientX, clientY) {
    z = Math.min(4, Math.max(0.05, z));
    var rect = viewport.getBoundingClientRect();
    var px = clientX === undefined ? viewport.clientWidth / 2 : clientX - rect.left;
    var py = clientY === undefined ? viewport.clientHeight / 2 : clientY - rect.top;
    var fx = (viewport.scrollLeft + px) / zoom, fy = (viewport.scrollTop + py) / zoom;
    zoom = z;
    svg.setAttribute('width', Math.round(baseW * z));
    svg.setAttribute('height', Math.round(baseH * z));
    viewport.scrollLeft = fx * z - px;
    viewport.scrollTop = fy * z - py;
    label.textContent = Math.round(z * 100) + '%';
  }
  function fit() {
    setZoom(Math.min(1, (viewport.clientWidth - 4) / baseW));
    viewport.scrollTop = 0;
  }
  document.getElementById('zoom-in').onclick = function () { setZoom(zoom * 1.25); };
  document.getElementById('zoom-out').onclick = function () { setZoom(zoom / 1.25); };
  document.getElementById('zoom-fit').onclick = fit;
  document.getElementById('zoom-reset').onclick = function () { setZoom(1); };
  viewport.addEventListener('wheel', function (e) {
    if (!e.ctrlKey && !e.metaKey && !e.altKey) { return; }
    e.preventDefault();
    setZoom(zoom * Math.exp(-e.deltaY * 0.0015), e.clientX, e.clientY);
  }, {passive: false});
  document.addEventListener('keydown', function (e) {
    if (e.key === '+' || e.key === '=') { setZoom(zoom * 1.25); }
    else if (e.key === '-' || e.key === '_') { setZoom(zoom / 1.25); }
    else if (e.key === '0') { fit(); }
  });
  var drag = null;
  viewport.addEventListener('mousedown', function (e) {
    drag = {x: e.clientX, y: e.clientY, left: viewport.scrollLeft, top: viewport.scrollTop};
    viewport.classList.add('dragging');
  });
  window.addEventListener('mousemove', function (e) {
    if (!drag) { return; }
    viewport.scrollLeft = drag.left - (e.clientX - drag.x);
    viewport.scrollTop = drag.top - (e.clientY - drag.y);
  });
  window.addEventListener('mouseup', function () {
    drag = null;
    viewport.classList.remove('dragging');
  });
  function start() {
    // Open where the partition is interesting: the topmost node kept in ONNX Runtime.
    var first = null, top = Infinity;
    svg.querySelectorAll('g.node[data-group=""]').forEach(function (g) {
      var y = g.getBoundingClientRect().top;
      if (y < top) { top = y; first = g; }
    });
    if (!first) { return; }
    var box = first.getBoundingClientRect(), view = viewport.getBoundingClientRect();
    viewport.scrollTop += box.top - view.top - viewport.clientHeight / 3;
    viewport.scrollLeft += box.left - view.left + box.width / 2 - viewport.clientWidth / 2;
    viewport.setAttribute('data-start', first.getAttribute('data-name'));
    viewport.setAttribute('data-start-top', String(Math.round(viewport.scrollTop)));
  }
  fit();
  start();
})();
"""


def _rows(rows: Iterable[Sequence[str]]) -> str:
    return "".join("<tr>" + "".join(row) + "</tr>" for row in rows)


def _html_summary(view: GraphView) -> str:
    report = view.report
    share = 100.0 * report.nodes_in_tensorrt / report.nodes if report.nodes else 0.0
    facts = [("Nodes", f"{report.nodes}"),
             ("In TensorRT", f"{report.nodes_in_tensorrt} ({share:.1f}%)"),
             ("In ONNX Runtime", f"{report.nodes - report.nodes_in_tensorrt}"),
             ("Engines", f"{len(report.engines)}")]
    fact_rows = _rows([f"<th>{k}</th>", f'<td class="num">{_esc(v)}</td>'] for k, v in facts)
    engine_rows = []
    for engine in report.engines:
        stroke, fill = _colours(view, engine.name) if engine.name in view.engines else _ORT
        status = engine.status + (f" ({engine.status_reason})" if engine.status_reason else "")
        engine_rows.append([
            f'<td><span class="swatch" style="background:{fill};border-color:{stroke}"></span>'
            f"{_esc(engine.name)}</td>", f'<td class="num">{engine.nodes}</td>',
            f"<td>{_esc(engine.precision)}</td>", f"<td>{_esc(status)}</td>"])
    return (
        '<div class="panel"><h2>Summary</h2><table class="summary">' + fact_rows + "</table></div>"
        '<div class="panel"><h2>Engines</h2><table class="engines"><tr><th>engine</th>'
        "<th>nodes</th><th>precision</th><th>status</th></tr>" + _rows(engine_rows)
        + "</table></div>"
    )


def _html_ops(report: Report) -> str:
    rows = []
    for op in report.ops:
        why = "; ".join(f"{r} (x{c})" if c > 1 else r for r, c in op.reasons) or "-"
        rows.append([f"<td>{_esc(op.op_type)}</td>", f'<td class="num">{op.count}</td>',
                     f'<td class="num">{op.in_tensorrt}</td>', f"<td>{_esc(why)}</td>"])
    for node in report.disagreements:
        rows.append([f"<td>{_esc(node.op_type)}</td>", "<td></td>", "<td></td>",
                     f"<td>TensorRT's parser rejected {_esc(node.name)}: {_esc(node.reason)}</td>"])
    return ('<div class="panel ops"><h2>Operators</h2><table class="ops"><tr><th>op type</th>'
            "<th>count</th><th>in TensorRT</th><th>reason for the rest</th></tr>"
            + _rows(rows) + "</table></div>")


def _html_legend(view: GraphView) -> str:
    items = []
    for group, label, size in _group_sizes(view):
        stroke, fill = _colours(view, group)
        style = f"background:{fill};border-color:{stroke}" + (
            "" if group else ";border-style:dashed")
        items.append(f'<li class="legend-item" data-group="{_esc(group)}"><span class="swatch" '
                     f'style="{style}"></span>{_esc(label)} ({size} nodes)</li>')
    return '<ul class="legend">' + "".join(items) + "</ul>"


def render_html(view: GraphView) -> str:
    """A self-contained HTML page: summary, engine and op tables, legend and the zoomable picture.

    Nothing is loaded from elsewhere. A small script writes the number of engines drawn into
    ``#engine-count`` and zooms with the buttons, the +/- keys or Ctrl + mouse wheel.
    """
    title = f"hybridtrt: {view.title}"
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{_esc(title)}</title><style>{_CSS}</style></head><body><main>",
        f"<h1>Where each node runs</h1><p class=\"source\">{_esc(view.title)}</p>",
        '<div class="panels">' + _html_summary(view) + _html_ops(view.report) + "</div>",
        '<div class="toolbar">' + _html_legend(view)
        + '<span id="engine-count">(the picture needs JavaScript to count its engines)</span>'
        '<span class="zoom"><span class="hint">Ctrl + wheel to zoom, drag to pan</span>'
        '<button id="zoom-out" title="zoom out (-)">−</button>'
        '<span id="zoom-level">100%</span>'
        '<button id="zoom-in" title="zoom in (+)">+</button>'
        '<button id="zoom-fit" title="fit the width (0)">fit</button>'
        '<button id="zoom-reset" title="actual size">1:1</button></span></div>',
        '<div id="viewport">' + _svg(view, header=False) + "</div>",
        f"</main><script>{_SCRIPT}</script></body></html>",
        "",
    ])


def write_picture(path: str | os.PathLike[str], text: str) -> Path:
    """Write a rendered picture atomically (readers never see half a file).

    Raises:
        SaveError: The file cannot be written (the message names it).
    """
    target = Path(path)
    try:
        write_atomically(target, text.encode("utf-8"))
    except OSError as exc:
        raise SaveError(f"cannot write the picture to {target}: {exc}") from exc
    return target


def picture_format(path: str | os.PathLike[str]) -> str:
    """``"html"`` or ``"svg"``, by the file's suffix (``.html``/``.htm`` or ``.svg``).

    Raises:
        ConfigError: The suffix is neither.
    """
    suffix = Path(path).suffix.lower()
    if suffix in (".html", ".htm"):
        return "html"
    if suffix == ".svg":
        return "svg"
    raise ConfigError(f"cannot draw the picture into {path}: its name must end in .html or .svg")


def render_file(view: GraphView, path: str | os.PathLike[str]) -> Path:
    """Render as HTML or SVG by the file's suffix (see ``picture_format``) and write it.

    Raises:
        ConfigError: The suffix is neither.
        SaveError: The file cannot be written.
    """
    render = render_html if picture_format(path) == "html" else render_svg
    return write_picture(path, render(view))
