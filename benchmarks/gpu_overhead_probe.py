"""Attribute the Predictor's GPU overhead against plain ONNX Runtime (one model, several setups)."""

from __future__ import annotations

import logging
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.examples import paddleocr_model
from hybridtrt.runtime import Config, create_predictor
from hybridtrt.runtime import device as device_module


def median_ms(call, runs: int = 200) -> float:
    for _ in range(20):
        call()
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return 1e3 * statistics.median(times)


def session(model: onnx.ModelProto, providers: list) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.log_severity_level = 3
    copy = onnx.ModelProto()
    copy.CopyFrom(model)
    copy.ir_version = min(copy.ir_version, 13)
    return ort.InferenceSession(copy.SerializeToString(), options, providers=providers)


def main() -> None:
    logging.getLogger("hybridtrt").setLevel(logging.ERROR)
    path = paddleocr_model(sys.argv[1] if len(sys.argv) > 1 else "det")
    x = np.random.default_rng(0).uniform(0, 1, (1, 3, 320, 320)).astype(np.float32)
    if "rec" in path.name:
        x = x[:, :, :48, :]
    feed = {"x": x}
    saved = convert(path, TensorRTConfig(inputs=[Input("x", list(x.shape), list(x.shape), list(x.shape))])).save(
        Path(tempfile.mkdtemp()) / "h.onnx")
    rows = []
    original = onnx.load(str(path))
    plain = session(original, ["CUDAExecutionProvider"])
    rows.append(("plain ORT, numpy in/out", median_ms(lambda: plain.run(None, feed))))
    config = Config(saved)
    config.enable_use_gpu()
    predictor = create_predictor(config)
    rows.append(("predictor inlined", median_ms(lambda: predictor.run(feed))))
    segment_model = predictor.plan.segments[0].model
    same = session(segment_model, ["CUDAExecutionProvider"])
    rows.append(("plain ORT on the segment model", median_ms(lambda: same.run(None, feed))))
    stream = predictor.device.stream  # type: ignore[attr-defined]
    user = session(original, [("CUDAExecutionProvider", {"user_compute_stream": str(stream)})])
    rows.append(("plain ORT + user stream, numpy", median_ms(lambda: user.run(None, feed))))
    binding = plain.io_binding()

    def bound() -> None:
        binding.bind_cpu_input("x", x)
        binding.bind_output(plain.get_outputs()[0].name, "cuda")
        plain.run_with_iobinding(binding)
        binding.copy_outputs_to_cpu()

    rows.append(("plain ORT IOBinding, output to host", median_ms(bound)))
    original_providers = device_module.CudaDevice.providers
    device_module.CudaDevice.providers = lambda self: ["CUDAExecutionProvider"]  # type: ignore[method-assign]
    no_stream = create_predictor(config)
    device_module.CudaDevice.providers = original_providers  # type: ignore[method-assign]
    rows.append(("predictor inlined, ORT's own stream", median_ms(lambda: no_stream.run(feed))))
    for name, ms in rows:
        print(f"{name:<40} {ms:8.3f} ms")


if __name__ == "__main__":
    main()
