"""``hybridtrt demo``: convert a shipped real CNN, save it, run it with the Predictor, compare."""

from __future__ import annotations

import dataclasses
import importlib.util
import tempfile
from pathlib import Path

import numpy as np
import onnx

from hybridtrt.compiler.pipeline import convert
from hybridtrt.config import TensorRTConfig
from hybridtrt.errors import UnsupportedModelError
from hybridtrt.examples import onnx_light_model
from hybridtrt.ort_support import runnable_bytes
from hybridtrt.runtime import Config, create_predictor

__all__ = ["DemoResult", "gpu_usable", "run_demo"]



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
    options = ort.SessionOptions()
    options.log_severity_level = 3
    session = ort.InferenceSession(runnable_bytes(model), options,
                                   providers=["CPUExecutionProvider"])
    return np.asarray(session.run(None, feed)[0])


def gpu_usable() -> bool:
    """Whether ONNX Runtime's CUDA provider and cuda-python are both installed."""
    try:
        import onnxruntime as ort
    except ImportError:
        return False
    return ("CUDAExecutionProvider" in ort.get_available_providers()
            and importlib.util.find_spec("cuda") is not None)


def run_demo(output_dir: Path | None = None, name: str = "resnet50") -> DemoResult:
    """Convert the shipped ``name`` model, save it, run it with the Predictor, and compare.

    The Predictor runs on the GPU when ONNX Runtime's CUDA provider is there, else on the CPU.
    Engines that cannot run in TensorRT run through ONNX Runtime, and ``placements`` says so.
    """
    source = onnx_light_model(name)
    folder = output_dir or Path(tempfile.mkdtemp(prefix="hybridtrt-demo-"))
    hybrid = convert(source, TensorRTConfig(inputs=[]))
    saved = hybrid.save(folder / f"{name}.hybrid.onnx")
    config = Config(saved)
    if gpu_usable():
        config.enable_use_gpu()
    predictor = create_predictor(config)
    original = onnx.load(str(source))
    weights = {t.name for t in original.graph.initializer}
    value = next(v for v in original.graph.input if v.name not in weights)
    dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
    feed = {value.name: np.random.default_rng(0).standard_normal(dims).astype(np.float32)}
    want = _ort(original, feed)
    got = predictor.run(None, feed)[0]
    device = "GPU" if config.use_gpu() else "CPU"
    placements = tuple(
        f"{p.name}: TensorRT" if p.runs_in == "tensorrt"
        else f"{p.name}: ONNX Runtime on the {device} ({p.reason})"
        for p in predictor.engine_status()
    )
    return DemoResult(saved, predictor.hybrid.report().render(), placements,
                      float(np.max(np.abs(got - want))))
