"""Paddle 2.x's INT8 example on PaddleOCR rec: calibrate on ~200 rendered text lines of traffic."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.online import DEFAULT_CALIBRATION_RUNS
from hybridtrt.runtime import Config, PrecisionType, create_predictor
from tests.suites import paddleocr_models

cv2 = pytest.importorskip("cv2")  # rapidocr's own dependency renders the text


def text_lines(count: int) -> list[np.ndarray]:
    """Black words on white 48x160 lines, normalized as PaddleOCR's rec preprocessing does."""
    rng = np.random.default_rng(0)
    words = ["hybrid", "TensorRT", "2026", "ONNX", "paddle", "ocr", "line", "text", "42"]
    lines = []
    for _ in range(count):
        image = np.full((48, 160, 3), 255, np.uint8)
        text = " ".join(rng.choice(words, size=2))
        cv2.putText(image, text, (4, 34), cv2.FONT_HERSHEY_SIMPLEX, 0.6, (0, 0, 0), 1)
        lines.append(((image.astype(np.float32) / 255 - 0.5) / 0.5).transpose(2, 0, 1)[None])
    return lines


@pytest.mark.slow
def test_paddleocr_rec_int8_calibrated_on_traffic_equals_the_offline_int8(tmp_path):
    folder = tmp_path / "rec"
    folder.mkdir()
    path = Path(shutil.copy(paddleocr_models()["rec"], folder / "inference.onnx"))
    config = Config(str(path))
    config.enable_tensorrt_engine(workspace_size=1 << 30, max_batch_size=1, min_subgraph_size=3,
                                  precision_mode=PrecisionType.Int8, use_static=False,
                                  use_calib_mode=True)
    config.set_trt_dynamic_shape_info({"x": [1, 3, 48, 160]}, {"x": [1, 3, 48, 320]},
                                      {"x": [1, 3, 48, 160]})
    predictor = create_predictor(config)
    lines = text_lines(DEFAULT_CALIBRATION_RUNS)
    for line in lines:
        predictor.run(None, {"x": line})
    assert not predictor.calibrating and predictor.engine_status()
    online_table = next((folder / "_opt_cache").glob("calibration-*.json"))
    assert json.loads(online_table.read_text())["samples"] == DEFAULT_CALIBRATION_RUNS
    # The offline path from the same table (tests/online/test_online.py shows the online and
    # offline calibrations agree on the same feeds; calibrating rec twice would take a minute)
    table = Path(shutil.copy(online_table, tmp_path / "table.json"))
    offline = convert(str(path), TensorRTConfig(
        inputs=[Input("x", [1, 3, 48, 160], [1, 3, 48, 160], [1, 3, 48, 320])],
        precision_mode="int8", calibration_cache=str(table)))
    offline_predictor = create_predictor(Config(offline.save(tmp_path / "offline.onnx")))
    probe = text_lines(DEFAULT_CALIBRATION_RUNS + 1)[-1]
    online_out = predictor.run(None, {"x": probe})[0]
    assert np.array_equal(online_out, offline_predictor.run(None, {"x": probe})[0])
