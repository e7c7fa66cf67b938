"""The picture as a self-contained HTML page: summary, engine and op tables, legend, and the
zoomable SVG, with the viewer's style and script (``viewer.css``, ``viewer.js``) inlined."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from importlib import resources

from hybridtrt.core.report import Report
from hybridtrt.tools.picture.svg import ORT_COLOURS, colours, escape, group_sizes, svg_markup
from hybridtrt.tools.picture.view import GraphView

__all__ = ["render_html", "viewer_asset"]


def viewer_asset(name: str) -> str:
    """The text of one of the page's files shipped with the package (``viewer.js``...)."""
    return resources.files(__package__).joinpath(name).read_text(encoding="utf-8")


def _rows(rows: Iterable[Sequence[str]]) -> str:
    return "".join("<tr>" + "".join(row) + "</tr>" for row in rows)


def _html_summary(view: GraphView) -> str:
    report = view.report
    share = 100.0 * report.nodes_in_tensorrt / report.nodes if report.nodes else 0.0
    facts = [("Nodes", f"{report.nodes}"),
             ("In TensorRT", f"{report.nodes_in_tensorrt} ({share:.1f}%)"),
             ("In ONNX Runtime", f"{report.nodes - report.nodes_in_tensorrt}"),
             ("Engines", f"{len(report.engines)}")]
    fact_rows = _rows([f"<th>{k}</th>", f'<td class="num">{escape(v)}</td>'] for k, v in facts)
    engine_rows = []
    for engine in report.engines:
        stroke, fill = colours(view, engine.name) if engine.name in view.engines else ORT_COLOURS
        status = engine.status + (f" ({engine.status_reason})" if engine.status_reason else "")
        engine_rows.append([
            f'<td><span class="swatch" style="background:{fill};border-color:{stroke}"></span>'
            f"{escape(engine.name)}</td>", f'<td class="num">{engine.nodes}</td>',
            f"<td>{escape(engine.precision)}</td>", f"<td>{escape(status)}</td>"])
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
        rows.append([f"<td>{escape(op.op_type)}</td>", f'<td class="num">{op.count}</td>',
                     f'<td class="num">{op.in_tensorrt}</td>', f"<td>{escape(why)}</td>"])
    for node in report.disagreements:
        rows.append([f"<td>{escape(node.op_type)}</td>", "<td></td>", "<td></td>",
                     f"<td>TensorRT's parser rejected {escape(node.name)}: {escape(node.reason)}</td>"])
    return ('<div class="panel ops"><h2>Operators</h2><table class="ops"><tr><th>op type</th>'
            "<th>count</th><th>in TensorRT</th><th>reason for the rest</th></tr>"
            + _rows(rows) + "</table></div>")


def _html_legend(view: GraphView) -> str:
    items = []
    for group, label, size in group_sizes(view):
        stroke, fill = colours(view, group)
        style = f"background:{fill};border-color:{stroke}" + (
            "" if group else ";border-style:dashed")
        items.append(f'<li class="legend-item" data-group="{escape(group)}"><span class="swatch" '
                     f'style="{style}"></span>{escape(label)} ({size} nodes)</li>')
    return '<ul class="legend">' + "".join(items) + "</ul>"


def render_html(view: GraphView) -> str:
    """A self-contained HTML page: summary, engine and op tables, legend and the zoomable picture.

    Nothing is loaded from elsewhere. A small script writes the number of engines drawn into
    ``#engine-count`` and zooms with the buttons, the +/- keys or Ctrl + mouse wheel.
    """
    title = f"hybridtrt: {view.title}"
    style, script = viewer_asset("viewer.css"), viewer_asset("viewer.js")
    return "\n".join([
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
        f"<title>{escape(title)}</title><style>\n{style}</style></head><body><main>",
        f"<h1>Where each node runs</h1><p class=\"source\">{escape(view.title)}</p>",
        '<div class="panels">' + _html_summary(view) + _html_ops(view.report) + "</div>",
        '<div class="toolbar">' + _html_legend(view)
        + '<span id="engine-count">(the picture needs JavaScript to count its engines)</span>'
        '<span class="zoom"><span class="hint">Ctrl + wheel to zoom, drag to pan</span>'
        '<button id="zoom-out" title="zoom out (-)">−</button>'
        '<span id="zoom-level">100%</span>'
        '<button id="zoom-in" title="zoom in (+)">+</button>'
        '<button id="zoom-fit" title="fit the width (0)">fit</button>'
        '<button id="zoom-reset" title="actual size">1:1</button></span></div>',
        '<div id="viewport">' + svg_markup(view, header=False) + "</div>",
        f"</main><script>\n{script}</script></body></html>",
        "",
    ])
