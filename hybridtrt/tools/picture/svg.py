"""The picture as SVG: a title and legend, a tinted region per engine, the edges, and the
boxes with their tooltips."""

from __future__ import annotations

import html
from collections import Counter

from hybridtrt.tools.picture.layout import (BOX_H, LAYER_GAP, MARGIN, NAME_CHAR, OP_CHAR, Box,
                                            Layout, labels, lay_out)
from hybridtrt.tools.picture.view import GraphView

__all__ = ["ORT_COLOURS", "colours", "escape", "group_sizes", "render_svg", "svg_markup"]


# Okabe & Ito's palette, told apart with every common colour-vision deficiency, in an order
# where neighbouring engines never get the two blues or the two oranges.
_PALETTE = ("#0072B2", "#E69F00", "#009E73", "#CC79A7", "#56B4E9", "#D55E00", "#F0E442")
ORT_COLOURS = ("#8a8a8a", "#ececec")
_FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
_TOOLTIP_NAMES = 40


def escape(text: object) -> str:
    """``text`` safe inside SVG/HTML text and attribute values."""
    return html.escape(str(text), quote=True)


def colours(view: GraphView, group: str) -> tuple[str, str]:
    """(stroke, fill) of a group: a palette colour and its light tint; grey for ONNX Runtime."""
    if not group:
        return ORT_COLOURS
    colour = _PALETTE[view.engines.index(group) % len(_PALETTE)]
    rgb = [int(colour[k:k + 2], 16) for k in (1, 3, 5)]
    return colour, "#" + "".join(f"{round(255 - (255 - c) * 0.3):02x}" for c in rgb)


def _fit(text: str, width: float, char: float) -> str:
    room = int((width - 14) / char)
    return text if len(text) <= room else text[:max(room - 1, 1)] + "…"


def _tooltip(view: GraphView, box: Box) -> str:
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


def _top(layout: Layout, item: int, header: float) -> float:
    return header + MARGIN + layout.layer[item] * (BOX_H + LAYER_GAP)


def _svg_boxes(view: GraphView, layout: Layout, header: float) -> list[str]:
    parts = []
    for k, box in enumerate(layout.boxes):
        w = layout.width[k]
        left, top = layout.x[k] - w / 2, _top(layout, k, header)
        stroke, fill = colours(view, box.group)
        dash = "" if box.group else ' stroke-dasharray="4 3"'
        ops, count, name = labels(view, box)
        top_line = _fit(ops, w - len(count) * OP_CHAR, OP_CHAR) + count
        parts.append(
            f'<g class="node" data-group="{escape(box.group)}" data-count="{len(box.members)}" '
            f'data-name="{escape(view.nodes[box.path[0]].name)}" '
            f'transform="translate({left:.1f},{top:.1f})">'
            f"<title>{escape(_tooltip(view, box))}</title>"
            f'<rect width="{w:.1f}" height="{BOX_H:.0f}" rx="6" fill="{fill}" stroke="{stroke}" '
            f'stroke-width="{2 if box.group else 1.2}"{dash}/>'
            f'<text class="op" x="{w / 2:.1f}" y="17">{escape(top_line)}</text>'
            f'<text class="name" x="{w / 2:.1f}" y="32">{escape(_fit(name, w, NAME_CHAR))}'
            "</text></g>"
        )
    return parts


def _svg_edges(layout: Layout, header: float) -> list[str]:
    parts = []
    for route in layout.routes:
        first, last = route[0], route[-1]
        points = [(layout.x[first], _top(layout, first, header) + BOX_H)]
        for bend in route[1:-1]:
            top = _top(layout, bend, header)
            points += [(layout.x[bend], top), (layout.x[bend], top + BOX_H)]
        points.append((layout.x[last], _top(layout, last, header) - 1.5))
        d = [f"M{points[0][0]:.1f},{points[0][1]:.1f}"]
        for (x0, y0), (x1, y1) in zip(points, points[1:]):
            if x0 == x1 and y1 - y0 == BOX_H:
                d.append(f"L{x1:.1f},{y1:.1f}")
            else:
                mid = (y0 + y1) / 2
                d.append(f"C{x0:.1f},{mid:.1f} {x1:.1f},{mid:.1f} {x1:.1f},{y1:.1f}")
        parts.append(f'<path class="edge" d="{" ".join(d)}" marker-end="url(#hybridtrt-arrow)"/>')
    return parts


def _runs(layout: Layout) -> list[tuple[str, int, float, float]]:
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


def _svg_regions(view: GraphView, layout: Layout, header: float) -> tuple[list[str], list[str]]:
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
        stroke, _ = colours(view, group)
        shapes = []
        for depth, spans in runs[group].items():
            top = header + MARGIN + depth * (BOX_H + LAYER_GAP)
            for left, right in spans:
                shapes.append(f'<rect x="{left:.1f}" y="{top - pad:.1f}" rx="10" '
                              f'width="{right - left:.1f}" height="{BOX_H + 2 * pad:.1f}"/>')
                for low_left, low_right in runs[group].get(depth + 1, ()):
                    join_left, join_right = max(left, low_left), min(right, low_right)
                    if join_right > join_left:
                        shapes.append(f'<rect x="{join_left:.1f}" y="{top + BOX_H:.1f}" width='
                                      f'"{join_right - join_left:.1f}" height="{LAYER_GAP:.1f}"/>')
        areas.append(f'<g class="engine-region" data-group="{escape(group)}" fill="{stroke}" '
                     f'opacity="0.13">{"".join(shapes)}</g>')
        depth, spans = next(iter(runs[group].items()))
        names.append(f'<text class="engine-label" x="{spans[0][0] + 2:.1f}" '
                     f'y="{header + MARGIN + depth * (BOX_H + LAYER_GAP) - pad - 4:.1f}" '
                     f'fill="{stroke}">{escape(group)}</text>')
    return areas, names


def group_sizes(view: GraphView) -> list[tuple[str, str, int]]:
    """(group, label, node count) for every engine, then ONNX Runtime."""
    sizes = Counter(n.group for n in view.nodes)
    return [(e, e, sizes[e]) for e in view.engines] + [("", "ONNX Runtime", sizes[""])]


def _svg_header(view: GraphView, width: float) -> tuple[list[str], float]:
    """The title line and the legend, wrapped to ``width``; returns them and their height."""
    trt = sum(1 for n in view.nodes if n.group)
    parts = [f'<text class="title" x="{MARGIN}" y="{MARGIN + 4}">{escape(view.title)}: '
             f"{trt} of {len(view.nodes)} nodes in {len(view.engines)} TensorRT engine(s)</text>"]
    x, y = MARGIN, MARGIN + 18
    for group, label, size in group_sizes(view):
        stroke, fill = colours(view, group)
        dash = "" if group else ' stroke-dasharray="3 2"'
        text = f"{label} ({size})"
        step = 34 + len(text) * NAME_CHAR
        if x > MARGIN and x + step > width - MARGIN:
            x, y = MARGIN, y + 22
        parts.append(
            f'<g class="legend-item" data-group="{escape(group)}" '
            f'transform="translate({x:.1f},{y:.1f})"><rect width="14" height="14" rx="3" '
            f'fill="{fill}" stroke="{stroke}" stroke-width="2"{dash}/>'
            f'<text class="legend" x="20" y="11">{escape(text)}</text></g>'
        )
        x += step
    return parts, y + 22


def svg_markup(view: GraphView, header: bool) -> str:
    layout = lay_out(view)
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
    return svg_markup(view, header=True) + "\n"
