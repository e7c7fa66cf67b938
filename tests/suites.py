"""Reusable model suites for tests: onnx's backend node cases, the onnx wheel's CNNs, PaddleOCR."""

from __future__ import annotations

import dataclasses
import warnings
from collections.abc import Iterator, Sequence
from pathlib import Path

import numpy as np
import onnx

from hybridtrt.ort_support import ORT_MAX_IR

ORT_MAX_OPSET = 26


@dataclasses.dataclass(frozen=True)
class Case:
    """One model with inputs and expected outputs (None: compare with plain ORT instead)."""

    name: str
    model: onnx.ModelProto
    inputs: dict[str, object]
    expected: list[np.ndarray] | None
    rtol: float = 1e-3
    atol: float = 1e-7


def lower_for_ort(model: onnx.ModelProto) -> onnx.ModelProto:
    """Cap IR and default-domain opset at what the installed ONNX Runtime reads."""
    lowered = onnx.ModelProto()
    lowered.CopyFrom(model)
    lowered.ir_version = min(lowered.ir_version, ORT_MAX_IR)
    for opset in lowered.opset_import:
        if opset.domain in ("", "ai.onnx"):
            opset.version = min(opset.version, ORT_MAX_OPSET)
    return lowered


def backend_node_cases() -> Iterator[Case]:
    """onnx's ~1,900 backend node cases, built in memory (use ``lower_for_ort`` to run them)."""
    from onnx.backend.test.loader import load_model_tests

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        tests = load_model_tests(kind="node")
    for test in tests:
        if test.model is None or not test.data_sets:
            continue
        model = test.model
        names = [v.name for v in model.graph.input
                 if v.name not in {t.name for t in model.graph.initializer}]
        inputs, outputs = test.data_sets[0]
        yield Case(test.name, model, dict(zip(names, inputs)), list(outputs),
                   test.rtol, test.atol)


def onnx_light_cnns() -> Iterator[Case]:
    """The small real CNNs (resnet50, densenet121, inception...) the onnx wheel ships."""
    folder = Path(onnx.__file__).parent / "backend" / "test" / "data" / "light"
    rng = np.random.default_rng(0)
    for path in sorted(folder.glob("light_*.onnx")):
        model = onnx.load(str(path))
        inits = {t.name for t in model.graph.initializer}
        feeds = {}
        for value in model.graph.input:
            if value.name in inits:
                continue
            dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
            feeds[value.name] = rng.standard_normal(dims).astype(np.float32)
        yield Case(path.stem.removeprefix("light_"), model, feeds, None, 1e-3, 1e-5)


def paddleocr_models() -> dict[str, Path]:
    """det / rec / cls PaddleOCR models shipped by the rapidocr_onnxruntime wheel.

    ``PADDLEOCR_MODELS_DIR`` points at a folder of copies instead (the GPU machine has no
    rapidocr; the models travel with the GPU check).
    """
    from hybridtrt.examples import paddleocr_model

    return {kind: paddleocr_model(kind) for kind in ("det", "rec", "cls")}


def ort_run(model: onnx.ModelProto, inputs: dict[str, object], provider: str = "CPUExecutionProvider") -> list[np.ndarray]:
    """Run a plain ONNX model on one ONNX Runtime provider (CPU by default)."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 4
    session = ort.InferenceSession(model.SerializeToString(), options, providers=[provider])
    return list(session.run(None, inputs))


def outputs_match(got: Sequence[object], expected: Sequence[object], rtol: float, atol: float) -> bool:
    """Element-wise closeness (NaNs equal), recursing into sequences; shapes and dtypes must match."""
    if len(got) != len(expected):
        return False
    for a, b in zip(got, expected):
        if isinstance(b, (list, tuple)):
            if not isinstance(a, (list, tuple)) or not outputs_match(a, b, rtol, atol):
                return False
            continue
        if b is None or a is None:
            if a is not b:
                return False
            continue
        x, y = np.asarray(a), np.asarray(b)
        if x.shape != y.shape:
            return False
        if x.dtype.kind in "fc" or y.dtype.kind in "fc":
            if not np.allclose(x.astype(np.float64) if x.dtype.kind != "c" else x,
                               y.astype(np.float64) if y.dtype.kind != "c" else y,
                               rtol=rtol, atol=atol, equal_nan=True):
                return False
        elif not np.array_equal(x, y):
            return False
    return True
