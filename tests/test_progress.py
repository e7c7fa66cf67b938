"""Progress bars: shown on a terminal or when forced, silent otherwise, and log lines stay whole."""

from __future__ import annotations

import io
import logging
import re
import sys

import numpy as np
import onnx
import onnx.helper as h
import pytest
from onnx import numpy_helper

from hybridtrt import Input, TensorRTConfig, convert, progress
from tests import models

DYNAMIC = TensorRTConfig(
    inputs=[Input("x", min_input_shape=[1, 4], optim_input_shape=[2, 4], max_input_shape=[8, 4])],
    disable_ops=["Sin"],
)


class FakeTTY(io.StringIO):
    """A stderr that says it is a terminal."""

    def isatty(self) -> bool:
        return True


def fake_tty(monkeypatch: pytest.MonkeyPatch) -> FakeTTY:
    """Replace stderr by a fake terminal (in the test body: pytest's capture resets sys.stderr
    between a fixture's setup and the test)."""
    stream = FakeTTY()
    monkeypatch.setattr(sys, "stderr", stream)
    return stream


@pytest.fixture
def info_logs(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="hybridtrt")


def _cnn() -> onnx.ModelProto:
    return models.conv_classifier(4, 8)


def test_forced_bars_name_the_shape_runs_and_the_engines(monkeypatch, capsys) -> None:
    monkeypatch.setenv(progress.ENV_VAR, "1")
    convert(models.split_chain(), DYNAMIC)
    err = capsys.readouterr().err
    assert re.search(r"shape ranges: 100%\|.*\| 3/3 ", err)
    assert re.search(r"engines: 100%\|.*\| 2/2 ", err)
    assert "tensorrt_engine_1" in err


def test_no_bars_when_stderr_is_not_a_terminal(monkeypatch, capsys, info_logs) -> None:
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    convert(models.split_chain(), DYNAMIC)
    assert capsys.readouterr().err == ""


def test_a_terminal_with_info_logging_shows_bars(monkeypatch, info_logs) -> None:
    tty = fake_tty(monkeypatch)
    monkeypatch.delenv(progress.ENV_VAR, raising=False)
    convert(models.split_chain(), DYNAMIC)
    assert "shape ranges:" in tty.getvalue() and "engines:" in tty.getvalue()


@pytest.mark.parametrize("level, env, shown", [
    (logging.INFO, "0", False),  # the variable silences a terminal
    (logging.ERROR, None, False),  # the CLI's -q sets the logger to ERROR
    (logging.WARNING, None, False),  # a library user who did not ask for INFO logs
    (logging.ERROR, "1", True),  # the variable wins over the logger's level
])
def test_variable_and_logger_level_decide_on_a_terminal(monkeypatch, caplog, level, env,
                                                        shown) -> None:
    tty = fake_tty(monkeypatch)
    if env is None:
        monkeypatch.delenv(progress.ENV_VAR, raising=False)
    else:
        monkeypatch.setenv(progress.ENV_VAR, env)
    caplog.set_level(level, logger="hybridtrt")
    assert progress.enabled() is shown
    convert(models.split_chain(), DYNAMIC)
    assert ("engines:" in tty.getvalue()) is shown


def test_int8_calibration_counts_its_samples(monkeypatch, capsys) -> None:
    monkeypatch.setenv(progress.ENV_VAR, "1")
    rng = np.random.default_rng(0)
    data = [{"x": rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)} for _ in range(5)]
    hybrid = convert(_cnn(), TensorRTConfig(precision_mode="int8", calibration_data=data,
                                            calibration_method="minmax"))
    assert re.search(r"calibration: 100%\|.*\| 5/5 ", capsys.readouterr().err)
    assert hybrid.engines[0].precision["quantization"] == "minmax ranges from 5 calibration samples"


def test_calibration_from_a_generator_counts_without_a_total(monkeypatch, capsys) -> None:
    monkeypatch.setenv(progress.ENV_VAR, "1")
    rng = np.random.default_rng(0)
    data = ({"x": rng.normal(0, 1, (1, 3, 8, 8)).astype(np.float32)} for _ in range(3))
    convert(_cnn(), TensorRTConfig(precision_mode="int8", calibration_data=data))
    assert re.search(r"calibration: 3sample", capsys.readouterr().err)


def test_log_lines_are_written_whole_above_the_bars(monkeypatch, info_logs) -> None:
    tty = fake_tty(monkeypatch)
    monkeypatch.setenv(progress.ENV_VAR, "1")
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("[hybridtrt] %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        convert(models.split_chain(), DYNAMIC)
    finally:
        logging.getLogger().removeHandler(handler)
    assert handler.stream is tty  # restored after the bars
    pieces = re.split(r"[\r\n]", tty.getvalue())
    # Written through the bars, each record starts a piece of its own instead of trailing a bar.
    assert "[hybridtrt] engine tensorrt_engine_0: 3 nodes, 1 inputs, 1 outputs, fp32" in pieces
    assert "[hybridtrt] engines done" in " ".join(p[:24] for p in pieces)


def test_output_is_byte_identical_with_and_without_bars(monkeypatch, capsys) -> None:
    monkeypatch.setenv(progress.ENV_VAR, "0")
    quiet = convert(models.split_chain(), DYNAMIC).model.SerializeToString(deterministic=True)
    monkeypatch.setenv(progress.ENV_VAR, "1")
    shown = convert(models.split_chain(), DYNAMIC).model.SerializeToString(deterministic=True)
    assert "engines:" in capsys.readouterr().err
    assert quiet == shown


def test_progress_keeps_items_and_order_and_bar_does_nothing_when_off(monkeypatch, capsys) -> None:
    monkeypatch.setenv(progress.ENV_VAR, "0")
    assert list(progress.progress(iter("abc"), desc="letters")) == ["a", "b", "c"]
    with progress.bar(total=2, desc="manual") as shown:
        shown.note("first")
        shown.advance(2)
    monkeypatch.setenv(progress.ENV_VAR, "1")
    assert list(progress.progress(range(4), desc="numbers", unit="n")) == [0, 1, 2, 3]
    err = capsys.readouterr().err
    assert "manual" not in err and "letters" not in err
    assert re.search(r"numbers: 100%\|.*\| 4/4 ", err)
