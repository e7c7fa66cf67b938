"""The graph picture: engines and reasons, collapsed chains, escaping, scale, a real browser."""

from __future__ import annotations

import re
import shutil
import subprocess
import time
import xml.etree.ElementTree as ET
from collections import Counter
from pathlib import Path

import numpy as np
import onnx
import onnx.helper as h
import pytest

from hybridtrt import ConfigError, Input, SaveError, TensorRTConfig, convert
from hybridtrt.core.hybrid import load
from hybridtrt.errors import InternalError
from hybridtrt.tools.picture import (
    GraphView,
    PictureNode,
    render_file,
    render_html,
    render_svg,
    view_of_hybrid,
    view_of_model,
    write_picture,
)
from tests.models import f32, make

SVG = "{http://www.w3.org/2000/svg}"
ODD_NAME = 'we<ird&"name'
CHAIN = ["Relu", "Neg", "Abs", "Relu", "Neg", "Abs"]
SIN_REASON = "op type Sin is in disable_ops"
CONFIG = TensorRTConfig(disable_ops=["Sin"], min_subgraph_size=1)


def two_engine_model() -> onnx.ModelProto:
    """x -> a chain of six unary ops -> Sin (ORT) -> Relu -> Add(skip from the chain) -> Mul -> y.

    With Sin disabled: engine 0 is the chain, engine 1 the three nodes after Sin.
    """
    names = [ODD_NAME] + [f"chain{k}" for k in range(1, len(CHAIN))]
    values = ["x"] + [f"c{k}" for k in range(len(CHAIN))]
    nodes = [h.make_node(op, [values[k]], [values[k + 1]], name=names[k])
             for k, op in enumerate(CHAIN)]
    last = values[-1]
    nodes += [
        h.make_node("Sin", [last], ["s"], name="sin"),
        h.make_node("Relu", ["s"], ["r"], name="relu_after"),
        h.make_node("Add", ["r", last], ["a"], name="add_skip"),
        h.make_node("Mul", ["a", "w"], ["y"], name="mul_w"),
    ]
    w = onnx.numpy_helper.from_array(np.full((2, 4), 0.5, dtype=np.float32), "w")
    return make(nodes, [f32("x", [2, 4])], [f32("y", [2, 4])], [w])


def wide_model(blocks: int = 143) -> onnx.ModelProto:
    """About 1,000 nodes: per block a five-op chain beside a Sigmoid branch, joined by an Add;
    every 20th branch is a Sin (disabled), which splits the engines."""
    nodes, h_in = [], "x"
    for b in range(blocks):
        values = [h_in] + [f"b{b}_{k}" for k in range(5)]
        nodes += [h.make_node(op, [values[k]], [values[k + 1]], name=f"b{b}_{op}{k}")
                  for k, op in enumerate(["Relu", "Neg", "Abs", "Relu", "Neg"])]
        branch = "Sin" if b % 20 == 19 else "Sigmoid"
        nodes.append(h.make_node(branch, [h_in], [f"b{b}_s"], name=f"b{b}_{branch}"))
        nodes.append(h.make_node("Add", [values[-1], f"b{b}_s"], [f"b{b}_out"], name=f"b{b}_add"))
        h_in = f"b{b}_out"
    nodes.append(h.make_node("Identity", [h_in], ["y"], name="out"))
    return make(nodes, [f32("x", [1, 8])], [f32("y", [1, 8])])


def boxes(svg: str) -> list[ET.Element]:
    return ET.fromstring(svg).findall(f".//{SVG}g[@class='node']")


def box_text(box: ET.Element) -> str:
    return " ".join(t.text or "" for t in box.findall(f"{SVG}text"))


@pytest.fixture(scope="module")
def view() -> GraphView:
    return view_of_model(two_engine_model(), CONFIG)


def test_view_puts_each_node_in_its_engine_and_says_why_the_rest_is_not(view: GraphView) -> None:
    assert view.engines == ("tensorrt_engine_0", "tensorrt_engine_1")
    groups = {n.name: n.group for n in view.nodes}
    assert [groups[n] for n in [ODD_NAME, "chain5"]] == ["tensorrt_engine_0"] * 2
    assert [groups[n] for n in ["relu_after", "add_skip", "mul_w"]] == ["tensorrt_engine_1"] * 3
    assert groups["sin"] == ""
    assert [n.reason for n in view.nodes if n.name == "sin"] == [SIN_REASON]
    assert all(n.reason == "" for n in view.nodes if n.group)
    assert (5, 6) in view.edges and (5, 8) in view.edges and (6, 7) in view.edges
    assert [e.name for e in view.report.engines] == list(view.engines)


def test_svg_boxes_carry_groups_counts_and_the_reason_in_their_tooltip(view: GraphView) -> None:
    found = boxes(render_svg(view))
    counts: Counter[str] = Counter()
    for box in found:
        counts[box.get("data-group", "?")] += int(box.get("data-count", "0"))
    assert counts == {"tensorrt_engine_0": 6, "tensorrt_engine_1": 3, "": 1}
    (sin,) = [b for b in found if b.get("data-group") == ""]
    tooltip = sin.find(f"{SVG}title")
    assert tooltip is not None and SIN_REASON in (tooltip.text or "")
    assert "ONNX Runtime" in (tooltip.text or "")
    assert all(b.find(f"{SVG}title") is not None for b in found)


def test_a_long_chain_becomes_one_box_with_its_node_count(view: GraphView) -> None:
    found = boxes(render_svg(view))
    engine0 = [b for b in found if b.get("data-group") == "tensorrt_engine_0"]
    assert len(engine0) == 1 and engine0[0].get("data-count") == "6"
    assert "Relu → Neg → … (6 nodes)" in box_text(engine0[0])
    # relu_after -> add_skip -> mul_w: a chain of three, but Add has a second producer
    assert len([b for b in found if b.get("data-group") == "tensorrt_engine_1"]) == 3


def test_odd_node_names_are_escaped(view: GraphView) -> None:
    svg = render_svg(view)
    assert ODD_NAME not in svg and html_escaped(ODD_NAME) in svg
    (chain,) = [b for b in boxes(svg) if b.get("data-group") == "tensorrt_engine_0"]
    assert ODD_NAME in (chain.find(f"{SVG}title").text or "")  # type: ignore[union-attr]
    assert ODD_NAME not in render_html(view)


def html_escaped(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace('"', "&quot;")


def test_rendering_is_deterministic() -> None:
    first = view_of_model(two_engine_model(), CONFIG)
    second = view_of_model(two_engine_model(), CONFIG)
    assert first == second
    assert render_svg(first) == render_svg(second) and render_html(first) == render_html(second)


def test_svg_legend_has_one_entry_per_engine_and_one_for_onnx_runtime(view: GraphView) -> None:
    root = ET.fromstring(render_svg(view))
    items = root.findall(f".//{SVG}g[@class='legend-item']")
    assert [i.get("data-group") for i in items] == ["tensorrt_engine_0", "tensorrt_engine_1", ""]
    regions = root.findall(f".//{SVG}g[@class='engine-region']")
    assert {r.get("data-group") for r in regions} == {"tensorrt_engine_0", "tensorrt_engine_1"}
    assert len(root.findall(f".//{SVG}path[@class='edge']")) >= 4


def test_html_page_is_self_contained_and_has_the_tables(view: GraphView) -> None:
    page = render_html(view)
    assert not re.search(r"<script[^>]+src=|<link|@import|url\(http|<img", page)
    assert page.count('class="legend-item"') == 3 and 'id="engine-count"' in page
    for text in ("tensorrt_engine_1", "not_built", "fp32", SIN_REASON, "90.0%", "<svg"):
        assert text in page


def test_view_of_a_saved_hybrid_model_matches_the_view_of_the_original(tmp_path: Path) -> None:
    model = two_engine_model()
    path = convert(model, CONFIG).save(tmp_path / "m.hybrid.onnx")
    from_hybrid = view_of_hybrid(load(path))
    from_model = view_of_model(model, CONFIG)
    assert from_hybrid.engines == from_model.engines
    assert ({n.name: (n.group, n.reason) for n in from_hybrid.nodes}
            == {n.name: (n.group, n.reason) for n in from_model.nodes})
    assert len(from_hybrid.edges) == len(from_model.edges)
    counts = Counter(b.get("data-group") for b in boxes(render_svg(from_hybrid)))
    assert counts == Counter(b.get("data-group") for b in boxes(render_svg(from_model)))


def test_a_thousand_node_model_renders_fast_as_far_fewer_boxes(tmp_path: Path) -> None:
    start = time.perf_counter()
    view = view_of_model(wide_model(), CONFIG)
    svg = render_svg(view)
    html = render_html(view)
    elapsed = time.perf_counter() - start
    assert len(view.nodes) == 1002 and len(view.engines) == 8
    found = boxes(svg)
    assert sum(int(b.get("data-count", "0")) for b in found) == len(view.nodes)
    assert len(found) < len(view.nodes) / 2
    assert elapsed < 15, f"view and rendering took {elapsed:.1f} s"
    assert html.count('class="legend-item"') == 9


def test_render_file_picks_the_format_by_suffix_and_refuses_others(
    view: GraphView, tmp_path: Path
) -> None:
    assert render_file(view, tmp_path / "p.svg").read_text(encoding="utf-8").startswith("<svg")
    assert "<!DOCTYPE html>" in render_file(view, tmp_path / "p.html").read_text(encoding="utf-8")
    with pytest.raises(ConfigError, match=r"p\.png.*\.html or \.svg"):
        render_file(view, tmp_path / "p.png")
    blocker = tmp_path / "file"
    blocker.write_text("x")
    with pytest.raises(SaveError, match="file"):
        write_picture(blocker / "p.svg", "<svg/>")


def test_graph_view_refuses_edges_and_groups_that_do_not_fit(view: GraphView) -> None:
    nodes = (PictureNode("a", "Relu", "e", ""), PictureNode("b", "Relu", "", "why"))
    with pytest.raises(InternalError, match="edges"):
        GraphView("t", nodes, ((0, 2),), ("e",), view.report)
    with pytest.raises(InternalError, match="groups"):
        GraphView("t", nodes, ((0, 1),), (), view.report)


def test_the_page_renders_in_a_real_browser_and_its_script_runs(
    view: GraphView, tmp_path: Path
) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (CI installs Debian's chromium for this test)")
    page = render_file(view, tmp_path / "picture.html")
    dom = run_chromium(browser, page, tmp_path, "--dump-dom")
    count = re.search(r'id="engine-count"[^>]*>([^<]*)<', dom)
    assert count is not None and count.group(1) == "2 engines", dom[:2000]
    assert dom.count('class="legend-item"') == 3
    assert len(re.findall(r'<g class="node"', dom)) == len(boxes(render_svg(view)))
    assert re.search(r'id="zoom-level"[^>]*>\d+%<', dom)


def run_chromium(browser: str, page: Path, tmp_path: Path, *flags: str) -> str:
    """Run headless chromium on ``page``; its stdout (the DOM for ``--dump-dom``)."""
    command = [browser, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={tmp_path / 'profile'}", *flags,
               page.resolve().as_uri()]
    done = subprocess.run(command, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def screenshot(page: Path, target: Path) -> None:
    """Debugging aid (not a test): ``screenshot(Path("p.html"), Path("/tmp/p.png"))``."""
    browser = shutil.which("chromium")
    assert browser is not None, "chromium is not installed"
    run_chromium(browser, page, target.parent, f"--screenshot={target}", "--window-size=1400,1000")


@pytest.fixture(scope="module")
def det_without_resize(tmp_path_factory: pytest.TempPathFactory) -> GraphView:
    """PP-OCR det with Resize kept out: six engines, stored out of number order, and the nodes
    kept in ONNX Runtime low in a tall graph."""
    from tests.suites import paddleocr_models

    config = TensorRTConfig(inputs=[Input("x", [1, 3, 64, 64], [1, 3, 64, 64], [1, 3, 64, 64])],
                            disable_ops=["Resize"])
    saved = convert(str(paddleocr_models()["det"]), config).save(
        tmp_path_factory.mktemp("det") / "d.onnx")
    return view_of_hybrid(load(saved))


def test_neighbouring_engines_get_colours_of_different_families(det_without_resize: GraphView) -> None:
    svg = render_svg(det_without_resize)
    stroke = {g: c for g, c in re.findall(r'data-group="(tensorrt_engine_\d+)"[^>]*>.*?<rect [^>]*'
                                          r'stroke="(#[0-9A-Fa-f]{6})"', svg)}
    names = [f"tensorrt_engine_{k}" for k in range(6)]
    assert list(det_without_resize.engines) == names
    families = ({"#0072B2", "#56B4E9"}, {"#E69F00", "#D55E00"})
    for a, b in zip(names, names[1:]):
        assert stroke[a] != stroke[b] and not any({stroke[a], stroke[b]} <= f for f in families)


def test_the_page_opens_at_the_first_node_kept_in_onnx_runtime(
    det_without_resize: GraphView, tmp_path: Path
) -> None:
    browser = shutil.which("chromium")
    if browser is None:
        pytest.skip("chromium is not installed (CI installs Debian's chromium for this test)")
    page = render_file(det_without_resize, tmp_path / "det.html")
    dom = run_chromium(browser, page, tmp_path, "--dump-dom", "--window-size=1400,1000")
    start = re.search(r'id="viewport"[^>]*data-start="([^"]*)"[^>]*data-start-top="(\d+)"', dom)
    assert start is not None, dom[:2000]
    resize = [n.name for n in det_without_resize.nodes if n.op_type == "Resize"]
    assert start.group(1) in resize and int(start.group(2)) > 500  # scrolled down to it
