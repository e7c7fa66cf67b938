"""Where each box goes: chains of nodes collapsed into boxes (constants folded into their only
consumer), boxes put on layers, each layer ordered to cross few edges, then coordinates."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import networkx as nx

from hybridtrt.tools.picture.view import GraphView

__all__ = ["BOX_H", "LAYER_GAP", "MARGIN", "NAME_CHAR", "OP_CHAR", "Box", "Layout", "labels",
           "lay_out"]


_CONSTANT_OPS = frozenset({"Constant", "ConstantOfShape"})  # folded into their only reader
_MIN_CHAIN = 3  # nodes a chain needs to become one box

BOX_H = 40.0  # height of a box, and of a layer
LAYER_GAP = 46.0
MARGIN = 24.0
OP_CHAR = 7.0  # width of one character of the op line, and of the name line
NAME_CHAR = 6.0
_GAP = 18.0  # between two boxes of a layer
_DUMMY_W = 4.0  # a bend of a long edge
_DUMMY_GAP = 6.0
_MAX_W = 270.0
_SWEEPS = 3


@dataclasses.dataclass(frozen=True)
class Box:
    """What one drawn box stands for: a chain of nodes (``path``) and the constants they read."""

    path: tuple[int, ...]
    members: tuple[int, ...]
    group: str


def _boxes(view: GraphView) -> tuple[list[Box], list[tuple[int, int]]]:
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
            boxes.append(Box(tuple(piece), members, view.nodes[piece[0]].group))
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


@dataclasses.dataclass(frozen=True)
class Layout:
    """Boxes placed on layers; items past the boxes are the bends of long edges.

    Attributes:
        boxes: The boxes.
        layer: Layer of each item.
        x: Horizontal centre of each item.
        width: Width of each item.
        rows: Items of each layer, left to right.
        routes: Per box edge, the items it passes through (its two boxes at the ends).
    """

    boxes: tuple[Box, ...]
    layer: tuple[int, ...]
    x: tuple[float, ...]
    width: tuple[float, ...]
    rows: tuple[tuple[int, ...], ...]
    routes: tuple[tuple[int, ...], ...]

    @property
    def size(self) -> tuple[float, float]:
        """(width, height) of the drawing, margins included."""
        right = max((x + w / 2 for x, w in zip(self.x, self.width)), default=0.0)
        return right + MARGIN, len(self.rows) * (BOX_H + LAYER_GAP) - LAYER_GAP + 2 * MARGIN


def lay_out(view: GraphView) -> Layout:
    """The view's boxes, on layers, ordered and placed."""
    boxes, edges = _boxes(view)
    layer = _layers(len(boxes), edges)
    routes, up, down = _bends(layer, edges)
    width = [_box_width(view, b) for b in boxes] + [_DUMMY_W] * (len(layer) - len(boxes))
    rows = _order(layer, up, down)
    x = _place(rows, up, down, width, len(boxes))
    return Layout(tuple(boxes), tuple(layer), tuple(x), tuple(width),
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
    return [value - left + MARGIN for value in x]


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


def labels(view: GraphView, box: Box) -> tuple[str, str, str]:
    """The box's lines: op type(s) and a node count kept when the ops are cut short, then the
    first node's name."""
    ops = [view.nodes[v].op_type for v in box.path]
    first = view.nodes[box.path[0]].name or "(unnamed)"
    if len(box.path) == 1:
        extra = len(box.members) - 1
        return ops[0], "", first + (f" +{extra} const" if extra else "")
    shown = " → ".join(ops[:3] if len(ops) == 3 else [*ops[:2], "…"])
    return shown, f" ({len(box.members)} nodes)", first


def _box_width(view: GraphView, box: Box) -> float:
    ops, count, name = labels(view, box)
    return min(_MAX_W, max(72.0, len(ops + count) * OP_CHAR + 20, len(name) * NAME_CHAR + 20))
