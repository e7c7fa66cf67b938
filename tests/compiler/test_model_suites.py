"""Every onnx backend node case, onnx's real CNNs and PaddleOCR: convert, save, load, run.

Conversion uses ``min_subgraph_size=1`` so every supported node sits in an engine, and an ``Input``
only for inputs of dynamic shape (the values of the others, some setting shapes, are unknown). The saved
file must be valid ONNX and hold exactly the original nodes (ORT nodes plus engine subgraphs);
with its engines inlined it must compute what the original computes; and the Predictor, with
engines inlined and isolated, must give the same outputs, for every case plain ORT passes.
"""

from __future__ import annotations

import collections
import functools
import logging
from pathlib import Path

import numpy as np
import onnx
import pytest

import hybridtrt
from hybridtrt import Input, TensorRTConfig
from hybridtrt.core.inline import inline_engines
from hybridtrt.core.format import DOMAIN
from hybridtrt.runtime import Config, create_predictor
from hybridtrt.trt.library import RTX, installed
from tests.suites import (
    Case,
    backend_node_cases,
    lower_for_ort,
    onnx_light_cnns,
    ort_run,
    outputs_match,
    paddleocr_models,
)


def _node_multiset(model: onnx.ModelProto) -> collections.Counter[str]:
    """Every node once: shape values an engine shares with the outside count outside only."""
    found: collections.Counter[str] = collections.Counter()
    computed = set()
    for node in model.graph.node:
        if node.domain != DOMAIN:
            found[f"{node.op_type}:{node.name}"] += 1
            computed.update(node.output)
    for engine in hybridtrt.HybridModel(model).engines:
        found.update(f"{n.op_type}:{n.name}" for n in engine.subgraph.node
                     if not (n.output and set(n.output) <= computed))
    return found


def _runnable(model: onnx.ModelProto) -> onnx.ModelProto:
    """The model lowered to what ONNX Runtime reads, unless lowering makes it invalid."""
    lowered = lower_for_ort(model)
    try:
        onnx.checker.check_model(lowered)
    except onnx.checker.ValidationError:
        return model
    return lowered


def _dynamic_inputs(model: onnx.ModelProto) -> set[str]:
    """Tensor inputs without a fully known shape (the others need no ``Input``)."""
    inits = {t.name for t in model.graph.initializer}
    found = set()
    for value in model.graph.input:
        if value.name in inits or not value.type.HasField("tensor_type"):
            continue
        tensor = value.type.tensor_type
        if not tensor.HasField("shape") or any(
                not d.HasField("dim_value") for d in tensor.shape.dim):
            found.add(value.name)
    return found


def _check_case(case: Case, folder: Path, backend: str = "auto",
                inputs: list[Input] | None = None) -> tuple[bool, str]:
    """(plain ORT passes, problem with us or ""); ``inputs`` default: warm-up data for the
    inputs of dynamic shape."""
    try:
        want = ort_run(lower_for_ort(case.model), case.inputs)
        ort_ok = case.expected is None or outputs_match(want, case.expected, case.rtol, case.atol)
    except Exception:  # noqa: BLE001 - ORT cannot run every case
        ort_ok, want = False, []
    model = _runnable(case.model)
    if inputs is None:
        dynamic = _dynamic_inputs(model)
        inputs = [Input(k, warmup_data=[v]) for k, v in case.inputs.items()
                  if isinstance(v, np.ndarray) and k in dynamic]
    hybrid = hybridtrt.convert(model, TensorRTConfig(inputs=inputs, min_subgraph_size=1,
                                                     backend=backend, cache_dir=folder / "cache"))
    path = hybrid.save(folder / f"{case.name}.onnx")
    back = hybridtrt.load(path)
    onnx.checker.check_model(str(path))
    if _node_multiset(back.model) != _node_multiset(model):
        return ort_ok, "nodes differ from the original"
    if ort_ok:
        got = ort_run(lower_for_ort(inline_engines(back.model)), case.inputs)
        reference = case.expected if case.expected is not None else want
        if not outputs_match(got, reference, case.rtol, case.atol):
            return ort_ok, "outputs of the inlined model differ"
        for isolated in (False, True):
            config = Config(path)
            config.isolate_engines(isolated)
            try:
                predictor = create_predictor(config)
                result = predictor.run_dict(dict(case.inputs))
            except hybridtrt.HybridTRTError as exc:
                return ort_ok, f"Predictor (isolate_engines={isolated}) failed: {exc}"
            got = [result[o.name] for o in predictor.get_outputs()]
            if not outputs_match(got, reference, case.rtol, case.atol):
                return ort_ok, f"Predictor outputs differ (isolate_engines={isolated})"
    return ort_ok, ""


def _backend_suite(folder: Path, backend: str = "auto") -> collections.Counter[str]:
    """Every backend node case through convert -> save -> load -> run; asserts as it goes."""
    logging.getLogger("hybridtrt").setLevel(logging.ERROR)
    counts: collections.Counter[str] = collections.Counter()
    problems = []
    isolated_failures: set[str] = set()  # isolated engines must run every case too
    for case in backend_node_cases():
        counts["cases"] += 1
        try:
            ort_ok, problem = _check_case(case, folder, backend)
        except hybridtrt.HybridTRTError as exc:
            ort_ok, problem = True, f"{type(exc).__name__}: {exc}"
        counts["plain ORT passes"] += ort_ok
        isolated_only = "isolate_engines=True" in problem
        counts["through hybridtrt"] += ort_ok and (not problem or isolated_only)
        if isolated_only:
            isolated_failures.add(case.name)
        elif problem:
            problems.append(f"{case.name}: {problem}")
        if (folder / f"{case.name}.onnx").exists():
            built = [e.status == "built" for e in hybridtrt.load(folder / f"{case.name}.onnx").engines]
            counts["engines"] += len(built)
            counts["engines built"] += sum(built)
    counts["isolated-mode known failures"] = len(isolated_failures)
    print(f"\nbackend node cases ({backend}): {dict(counts)}")
    assert counts["cases"] > 1800
    assert not problems, "\n".join(problems[:40])
    assert counts["through hybridtrt"] == counts["plain ORT passes"] > 1400
    assert not isolated_failures, sorted(isolated_failures)
    return counts


@pytest.mark.slow
def test_every_backend_node_case_converts_saves_loads_and_matches(tmp_path: Path) -> None:
    assert _backend_suite(tmp_path)["engines built"] == 0  # no TensorRT here


@pytest.mark.slow
@pytest.mark.skipif(not installed(RTX), reason="TensorRT-RTX is not installed "
                                               "(pip install tensorrt-rtx-cu13==1.7.1.116)")
def test_every_backend_node_case_also_passes_with_real_tensorrt_rtx_engines(tmp_path: Path) -> None:
    """The same with TensorRT-RTX building every engine for real; at load (no RTX GPU here)
    the engines fall back to ONNX Runtime, so every answer must still match."""
    counts = _backend_suite(tmp_path, RTX)
    assert counts["engines built"] >= 0.95 * counts["engines"] and counts["engines"] > 900, dict(counts)


@functools.lru_cache(maxsize=1)
def _named_cases() -> dict[str, Case]:
    return {c.name: c for c in backend_node_cases()}


@pytest.mark.parametrize("name", [
    "test_affine_grid_2d_expanded", "test_affine_grid_3d_align_corners_expanded",
    "test_center_crop_pad_crop_and_pad_expanded", "test_center_crop_pad_pad_expanded",
    "test_reduce_l2_keep_dims_example_expanded", "test_reduce_log_sum_asc_axes_expanded",
    "test_reduce_log_sum_desc_axes_expanded",
    "test_sequence_map_add_1_sequence_1_tensor", "test_sequence_map_identity_1_sequence_1_tensor",
])  # fmt: skip
def test_values_that_set_shapes_and_inputs_no_engine_reads_need_no_input(
    name: str, tmp_path: Path
) -> None:
    """Converted with no Input at all: random warm-up values for sizes, axes and shapes must
    not reach an engine's shape ranges, and a dynamic input that reaches no engine needs no
    Input; every run with the real values then matches."""
    ort_ok, problem = _check_case(_named_cases()[name], tmp_path, inputs=[])
    assert ort_ok and not problem


@pytest.mark.parametrize("case", list(onnx_light_cnns()), ids=lambda c: c.name)
def test_onnx_real_cnns_go_fully_into_engines_and_match(case: Case, tmp_path: Path) -> None:
    ort_ok, problem = _check_case(case, tmp_path)
    assert ort_ok and not problem
    report = hybridtrt.load(tmp_path / f"{case.name}.onnx").report()
    assert report.nodes_in_tensorrt == report.nodes, report.render()


OCR_SHAPES = {
    "det": ([1, 3, 64, 64], [1, 3, 320, 320], [1, 3, 640, 640]),
    "rec": ([1, 3, 48, 32], [1, 3, 48, 320], [4, 3, 48, 1280]),
    "cls": ([1, 3, 48, 192], [4, 3, 48, 192], [8, 3, 48, 192]),
}


@pytest.mark.parametrize("kind", ["det", "rec", "cls"])
def test_paddleocr_models_convert_with_dynamic_profiles(kind: str, tmp_path: Path) -> None:
    path = paddleocr_models()[kind]
    lo, opt, hi = OCR_SHAPES[kind]
    hybrid = hybridtrt.convert(path, TensorRTConfig(inputs=[Input("x", lo, opt, hi)]))
    saved = hybrid.save(tmp_path / f"{kind}.onnx")
    back = hybridtrt.load(saved)
    report = back.report()
    assert report.nodes_in_tensorrt == report.nodes, report.render()
    assert len(back.engines) == 1
    assert back.engines[0].profiles[0]["x"] == {"min": lo, "opt": opt, "max": hi}
    assert back.engines[0].status == "not_built"
    original = onnx.load(str(path))
    rng = np.random.default_rng(0)
    for shape in (lo, opt, hi):
        feed = {"x": rng.uniform(0, 1, shape).astype(np.float32)}
        np.testing.assert_allclose(ort_run(inline_engines(back.model), feed)[0],
                                   ort_run(original, feed)[0], rtol=1e-4, atol=1e-5)
