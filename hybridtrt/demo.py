"""``hybridtrt demo``: convert a shipped real CNN, save, load, run, and compare with ONNX Runtime."""

from __future__ import annotations

import dataclasses
import tempfile
from pathlib import Path

import numpy as np
import onnx

from hybridtrt.compiler.hybrid import load
from hybridtrt.compiler.inline import inline_engines
from hybridtrt.compiler.pipeline import convert
from hybridtrt.config import TensorRTConfig
from hybridtrt.errors import UnsupportedModelError
from hybridtrt.examples import onnx_light_model

__all__ = ["DemoResult", "run_demo"]

_ORT_MAX_IR = 13


@dataclasses.dataclass(frozen=True)
class DemoResult:
    """What the demo did: where the hybrid model went, its report, and the largest difference."""

    saved: Path
    report: str
    placements: tuple[str, ...]
    max_abs_diff: float


def _ort(model: onnx.ModelProto, feed: dict[str, np.ndarray]) -> np.ndarray:
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise UnsupportedModelError("the demo runs models with ONNX Runtime: "
                                    "pip install 'hybridtrt[cpu]'") from exc
    runnable = onnx.ModelProto()
    runnable.CopyFrom(model)
    runnable.ir_version = min(runnable.ir_version, _ORT_MAX_IR)
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(runnable.SerializeToString(), options,
                                   providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feed)[0])


def run_demo(output_dir: Path | None = None, name: str = "resnet50") -> DemoResult:
    """Convert the shipped ``name`` model, save and reload it, run both, and compare.

    Engines that are not built run through ONNX Runtime, exactly where TensorRT would run them
    once built, so the comparison checks the hybrid model's structure on any machine.
    """
    source = onnx_light_model(name)
    folder = output_dir or Path(tempfile.mkdtemp(prefix="hybridtrt-demo-"))
    hybrid = convert(source, TensorRTConfig(inputs=[]))
    saved = hybrid.save(folder / f"{name}.hybrid.onnx")
    loaded = load(saved)
    original = onnx.load(str(source))
    value = original.graph.input[0]
    dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
    feed = {value.name: np.random.default_rng(0).standard_normal(dims).astype(np.float32)}
    want = _ort(original, feed)
    got = _ort(inline_engines(loaded.model), feed)
    placements = tuple(
        f"{e.name}: ONNX Runtime ({e.status_reason})" if e.status != "built"
        else f"{e.name}: TensorRT" for e in loaded.engines
    )
    return DemoResult(saved, loaded.report().render(), placements,
                      float(np.max(np.abs(got - want))))
