"""The pipeline's one list of steps: ``convert`` and ``analyze`` share it, and each run keeps
its own timings (two threads converting at once do not mix them)."""

from __future__ import annotations

import gc
import logging
import threading
from pathlib import Path

import pytest

from hybridtrt import HybridModel, Input, TensorRTConfig, convert
from hybridtrt.compiler.pipeline import analyze
from hybridtrt.compiler.steps import ANALYSIS, STEPS
from hybridtrt.trt.engine import BuildResult, NotBuilding
from tests import models

DYNAMIC = TensorRTConfig(inputs=[Input("x", (1, 4), (2, 4), (8, 4))], disable_ops=["Sin"])
NAMES = [s.name for s in STEPS]


def _steps_logged(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage().removesuffix(" ...") for r in caplog.records
            if r.name == "hybridtrt" and r.getMessage().endswith(" ...")]


def test_convert_and_analyze_run_the_same_steps_up_to_the_report(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with caplog.at_level(logging.INFO, logger="hybridtrt"):
        convert(models.split_chain(), DYNAMIC)
    converted = _steps_logged(caplog)
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="hybridtrt"):
        report = analyze(models.split_chain(), DYNAMIC)
    analyzed = _steps_logged(caplog)
    assert converted == [n for n in NAMES if n != "save"]
    assert analyzed == [s.name for s in ANALYSIS] == converted[:len(analyzed)]
    assert analyzed[-1] == "report" and "load" in analyzed
    assert len(report.engines) == 2


def test_the_timings_list_every_step_in_order(tmp_path: Path) -> None:
    hybrid = convert(models.split_chain(),
                     TensorRTConfig(DYNAMIC.inputs, disable_ops=["Sin"], save_model_dir=tmp_path))
    assert list(hybrid.stage_seconds) == NAMES
    assert all(seconds >= 0.0 for seconds in hybrid.stage_seconds.values())
    assert "save" not in convert(models.split_chain(), DYNAMIC).stage_seconds


class _WaitingBuilder:
    """Builds nothing until ``go`` is set, so its conversion overlaps another one."""

    def __init__(self, go: threading.Event) -> None:
        self.go = go

    def parser_support(self, model):
        return None

    def build(self, name, model, profiles, settings) -> BuildResult:
        assert self.go.wait(60)
        return BuildResult(reason="waited")


def test_two_threads_converting_at_once_each_get_their_own_timings(tmp_path: Path) -> None:
    saved = TensorRTConfig(DYNAMIC.inputs, disable_ops=["Sin"], save_model_dir=tmp_path)
    first_done = threading.Event()
    got: dict[str, HybridModel] = {}

    def first() -> None:  # converts and saves while the second waits inside its engine step
        got["first"] = convert(models.split_chain(), saved, builder=NotBuilding("none"))
        first_done.set()

    def second() -> None:
        got["second"] = convert(models.split_chain(), DYNAMIC,
                                builder=_WaitingBuilder(first_done))

    was_enabled = gc.isenabled()
    threads = [threading.Thread(target=second), threading.Thread(target=first)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    first_model, second_model = got["first"], got["second"]
    assert list(first_model.stage_seconds) == NAMES
    assert list(second_model.stage_seconds) == [n for n in NAMES if n != "save"]
    assert gc.isenabled() == was_enabled
    alone = convert(models.split_chain(), DYNAMIC, builder=NotBuilding("none"))
    assert first_model.model.SerializeToString() == alone.model.SerializeToString()
