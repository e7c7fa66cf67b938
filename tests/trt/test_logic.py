"""The pure logic around TensorRT: profiles, fingerprints, cache keys and the engine cache."""

from __future__ import annotations

import multiprocessing
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import onnx
import pytest

from hybridtrt.trt.builder import engine_key
from hybridtrt import TensorRTConfig
from hybridtrt.errors import ConfigError
from hybridtrt.trt import library, rtx
from hybridtrt.trt.api import GpuInfo, TensorRTFailure
from hybridtrt.trt.backends import load_backend
from hybridtrt.trt.library import RTX, rules_library
from hybridtrt.trt.cache import EngineCache, cache_key
from hybridtrt.trt.fingerprint import incompatibility, plan_fingerprint
from hybridtrt.trt.profiles import profile_settings, select_profile, widen
from tests.models import split_chain

ROOT = Path(__file__).resolve().parents[2]


def _range(lo, opt, hi):
    return {"min": list(lo), "opt": list(opt), "max": list(hi)}


def test_profile_settings_cover_dynamic_inputs_only():
    network = {"x": (-1, 3, -1, -1), "scale": (1,)}
    profile = {"x": _range((1, 3, 32, 32), (2, 3, 64, 64), (4, 3, 128, 128)), "scale": _range((1,), (1,), (1,))}
    assert profile_settings(network, profile) == [
        ("x", (1, 3, 32, 32), (2, 3, 64, 64), (4, 3, 128, 128))]


@pytest.mark.parametrize("profile, message", [
    ({}, "input 'x' has dynamic shape [-1, 3] but no recorded shape range"),
    ({"x": _range((1,), (1,), (1,))}, "min shape [1] has rank 1, the network has rank 2"),
    ({"x": _range((1, 4), (1, 4), (2, 4))}, "differs from the network's static dimension(s) [1]"),
    ({"x": _range((2, 3), (1, 3), (4, 3))}, "need min <= opt <= max"),
])
def test_profile_settings_name_the_input_and_the_problem(profile, message):
    with pytest.raises(TensorRTFailure, match=None) as caught:
        profile_settings({"x": (-1, 3)}, profile)
    assert message in str(caught.value)


def test_select_profile_takes_the_tightest_profile_that_holds_the_shapes():
    wide = {"x": _range((1, 3), (8, 3), (64, 3))}
    narrow = {"x": _range((1, 3), (2, 3), (4, 3))}
    profiles = [wide, narrow]
    assert select_profile({"x": (2, 3)}, profiles) == 1
    assert select_profile({"x": (16, 3)}, profiles) == 0
    assert select_profile({"x": (65, 3)}, profiles) is None
    assert select_profile({"x": (2, 3, 1)}, profiles) is None  # wrong rank
    assert select_profile({"other": (9,)}, profiles) == 1  # names outside the profiles do not count


def test_widen_stretches_the_first_profile_only():
    profiles = [{"x": _range((1, 3), (2, 3), (4, 3))}, {"x": _range((8, 3), (8, 3), (8, 3))}]
    wider = widen(profiles, {"x": (6, 3)})
    assert wider[0]["x"] == _range((1, 3), (2, 3), (6, 3))
    assert wider[1] == profiles[1]
    assert select_profile({"x": (6, 3)}, wider) == 0
    with pytest.raises(TensorRTFailure, match="rank 3"):
        widen(profiles, {"x": (6, 3, 1)})


def test_fingerprint_decisions():
    h100 = GpuInfo("NVIDIA H100", "9.0")
    fingerprint = plan_fingerprint("10.16.1", h100, "none")
    assert incompatibility(fingerprint, "10.16.1", h100) == ""
    assert "TensorRT 10.16.1, this host has TensorRT 11.4.0" in incompatibility(fingerprint, "11.4.0", h100)
    assert "compute capability 9.0" in incompatibility(fingerprint, "10.16.1", GpuInfo("A100", "8.0"))
    portable = plan_fingerprint("10.16.1", h100, "ampere_plus")
    assert incompatibility(portable, "10.16.1", GpuInfo("A100", "8.0")) == ""
    assert "Ampere and newer" in incompatibility(portable, "10.16.1", GpuInfo("T4", "7.5"))
    assert incompatibility({}, "10.16.1", h100) == "the engine carries no TensorRT fingerprint"


def test_tensorrt_rtx_fingerprints_run_on_their_targets_only():
    target = rtx.target((), None)
    assert target.compute_capabilities == rtx.DEFAULT_TARGETS and not target.can_strip
    fingerprint = plan_fingerprint("1.7.1.116", target.gpu, "none", RTX)
    assert fingerprint["library"] == RTX and fingerprint["compute_capability"] == "8.0,8.6,8.9,12.0"
    assert incompatibility(fingerprint, "1.7.1.116", GpuInfo("RTX 4090", "8.9"), RTX) == ""
    assert "has 9.0" in incompatibility(fingerprint, "1.7.1.116", GpuInfo("NVIDIA H200", "9.0"), RTX)
    assert ("built with TensorRT-RTX 1.7.1.116, this host has TensorRT 10.16.1"
            in incompatibility(fingerprint, "10.16.1", GpuInfo("RTX 4090", "8.9")))
    assert rtx.target((), GpuInfo("RTX 4090", "8.9")).compute_capabilities == ("8.9",)
    assert rtx.target((), GpuInfo("NVIDIA H200", "9.0")).compute_capabilities == rtx.DEFAULT_TARGETS
    assert rtx.check_targets(["12", "8.6", "8.6"]) == ("8.6", "12.0")
    with pytest.raises(ValueError, match="'9.0' is not one TensorRT-RTX builds for"):
        rtx.check_targets(["9.0"])


def test_the_backend_choice_and_its_errors(monkeypatch):
    with pytest.raises(ConfigError, match="backend must be one of"):
        TensorRTConfig(backend="trt")
    with pytest.raises(ConfigError, match="target_compute_capabilities: compute capability '9.0'"):
        TensorRTConfig(backend=RTX, target_compute_capabilities=["9.0"])
    with pytest.raises(ConfigError, match="applies to TensorRT-RTX"):
        TensorRTConfig(backend="tensorrt", target_compute_capabilities=["8.6"])
    assert TensorRTConfig(target_compute_capabilities="8.6").build_settings()[
        "target_compute_capabilities"] == ["8.6"]
    monkeypatch.setenv("HYBRIDTRT_BACKEND", "none")
    assert load_backend() == (None, "TensorRT is turned off (HYBRIDTRT_BACKEND=none)")
    monkeypatch.setenv("HYBRIDTRT_BACKEND", "trt")
    assert "HYBRIDTRT_BACKEND=trt names no TensorRT library" in load_backend()[1]
    monkeypatch.delenv("HYBRIDTRT_BACKEND")
    monkeypatch.setattr(library, "installed", lambda name: False)
    monkeypatch.setattr(library, "bound_name", lambda: "")  # as in a fresh process
    assert "TensorRT is not installed" in load_backend()[1]
    assert load_backend(RTX) == (None, "tensorrt_rtx is not installed")
    # with no TensorRT at all, an explicit backend still picks its rules
    assert rules_library(RTX) == RTX and rules_library("auto") == "tensorrt"


def test_cache_key_is_stable_and_changes_with_every_input():
    model = split_chain()
    settings = {"precision_mode": "fp32", "strip_weights": True}
    profiles = [{"x": _range((1, 4), (2, 4), (4, 4))}]
    key = engine_key(model.graph, profiles, settings, "10.16.1", "9.0")
    assert key == engine_key(split_chain().graph, profiles, settings, "10.16.1", "9.0")
    renamed = onnx.GraphProto()
    renamed.CopyFrom(model.graph)
    renamed.name = "another_name"
    assert engine_key(renamed, profiles, settings, "10.16.1", "9.0") == key
    changed = onnx.GraphProto()
    changed.CopyFrom(model.graph)
    weight = onnx.numpy_helper.to_array(changed.initializer[0]).copy()
    weight.flat[0] += 1.0
    changed.initializer[0].CopyFrom(onnx.numpy_helper.from_array(weight, changed.initializer[0].name))
    others = {
        engine_key(changed, profiles, settings, "10.16.1", "9.0"),
        engine_key(model.graph, [{"x": _range((1, 4), (2, 4), (8, 4))}], settings, "10.16.1", "9.0"),
        engine_key(model.graph, profiles, {**settings, "strip_weights": False}, "10.16.1", "9.0"),
        engine_key(model.graph, profiles, settings, "11.4.0", "9.0"),
        engine_key(model.graph, profiles, settings, "10.16.1", "8.0"),
    }
    assert key not in others and len(others) == 5
    assert cache_key("a", [], {}, "1", "2") == cache_key("a", [], {}, "1", "2")


def test_cache_put_get_and_timing_cache(tmp_path):
    cache = EngineCache(tmp_path)
    assert cache.get("k") is None
    path = cache.put("k", b"plan")
    assert cache.get("k") == b"plan" and path.parent == tmp_path / "engines"
    assert [p.name for p in path.parent.iterdir()] == ["k.plan"]  # no temp file left behind
    assert cache.timing_cache("10.16", "9.0") == b""
    cache.save_timing_cache("10.16", "9.0", b"timing")
    assert cache.timing_cache("10.16", "9.0") == b"timing"
    assert cache.timing_cache("10.16", "8.0") == b""


def test_default_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    from hybridtrt.trt.cache import default_cache_dir

    monkeypatch.setenv("HYBRIDTRT_CACHE_DIR", str(tmp_path / "explicit"))
    assert default_cache_dir() == tmp_path / "explicit"
    monkeypatch.delenv("HYBRIDTRT_CACHE_DIR")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "hybridtrt"


_BUILDER = """
import sys, time
from pathlib import Path
from hybridtrt.trt.cache import EngineCache
cache = EngineCache(sys.argv[1])
with cache.building("key"):
    if cache.get("key") is None:
        with open(Path(sys.argv[1]) / "builds.log", "a") as log:
            log.write(sys.argv[2] + "\\n")
        time.sleep(1.0)  # a slow build
        cache.put("key", b"plan-" + sys.argv[2].encode() * 100000)
print(len(cache.get("key")))
"""


def test_two_processes_building_one_engine_build_it_once(tmp_path):
    procs = [subprocess.Popen([sys.executable, "-c", _BUILDER, str(tmp_path), name],
                              cwd=ROOT, stdout=subprocess.PIPE, text=True) for name in ("a", "b")]
    outs = [p.communicate(timeout=60)[0].strip() for p in procs]
    assert [p.returncode for p in procs] == [0, 0]
    builds = (tmp_path / "builds.log").read_text().split()
    assert len(builds) == 1  # the second process waited for the first and took its plan
    assert outs[0] == outs[1] == str(len(b"plan-") + 100000)
    assert sorted(p.name for p in (tmp_path / "engines").iterdir()) == ["key.plan"]


def test_readers_never_see_a_half_written_plan(tmp_path):
    cache = EngineCache(tmp_path)
    big, small = b"x" * (8 << 20), b"y" * 10
    cache.put("k", small)
    writer = multiprocessing.get_context("spawn").Process(target=_write_many, args=(str(tmp_path), big))
    writer.start()
    seen = set()
    deadline = time.time() + 30
    while writer.is_alive() and time.time() < deadline:
        seen.add(len(cache.get("k") or b""))
    writer.join()
    assert seen <= {len(small), len(big)}


def _write_many(directory: str, data: bytes) -> None:
    cache = EngineCache(directory)
    for _ in range(20):
        cache.put("k", data)
        cache.put("k", b"y" * 10)


def test_typecheck_script_passes_and_catches_a_wrong_call(tmp_path):
    """tools/trt_typecheck.sh: clean on our TensorRT modules, failing on a name TensorRT lacks."""
    bad = tmp_path / "bad.py"
    bad.write_text("import tensorrt as trt\n\nbuilder = trt.Builder(trt.Logger())\n"
                   "builder.build_engine(None, None)\n")
    env = {**os.environ, "PYTHON": sys.executable}
    ok = subprocess.run(["bash", "tools/trt_typecheck.sh"], cwd=ROOT, capture_output=True,
                        text=True, env=env)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    assert ok.stdout.count("Success: no issues found") == 3
    assert "== TensorRT-RTX 1.7 API" in ok.stdout
    wrong = subprocess.run(["bash", "tools/trt_typecheck.sh", str(bad)], cwd=ROOT,
                           capture_output=True, text=True, env=env)
    assert wrong.returncode != 0
    assert '"Builder" has no attribute "build_engine"' in wrong.stdout
    np.testing.assert_equal(wrong.stdout.count("== TensorRT"), 3)
    rtx_only = tmp_path / "rtx_only.py"  # a call TensorRT-RTX lacks, in a shared module
    rtx_only.write_text("import tensorrt as trt\n\nconfig = trt.Builder(trt.Logger())"
                        ".create_builder_config()\nconfig.set_flag(trt.BuilderFlag.FP16)\n")
    third = subprocess.run(["bash", "tools/trt_typecheck.sh", str(rtx_only)], cwd=ROOT,
                           capture_output=True, text=True, env=env)
    assert third.returncode != 0 and "FP16" in third.stdout.split("== TensorRT-RTX")[1], third.stdout
