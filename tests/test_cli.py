"""The hybridtrt command line, as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import onnx
import pytest

import hybridtrt
import hybridtrt.examples
from hybridtrt.cli import main, parse_shapes
from hybridtrt.errors import ConfigError
from tests import models
from tests.suites import paddleocr_models


def test_parse_shapes_uses_trtexec_syntax() -> None:
    assert parse_shapes("x:1x3x224x224,mask:1x224", "--shapes") == {
        "x": (1, 3, 224, 224), "mask": (1, 224)}
    assert parse_shapes("scope:name:2x3,s:", "--shapes") == {"scope:name": (2, 3), "s": ()}
    with pytest.raises(ConfigError, match="'1x3' in 'x:1x3' is not|is not NAME:DIMS"):
        parse_shapes("1x3", "--shapes")
    with pytest.raises(ConfigError, match=r"--min-shapes: '1xAx3' in 'x:1xAx3' is not dims"):
        parse_shapes("x:1xAx3", "--min-shapes")
    # trtexec's quoted names, polygraphy's brackets (items also split on spaces)
    assert parse_shapes("'a:b':2x2 y:[1,3,224,224]", "--shapes") == {
        "a:b": (2, 2), "y": (1, 3, 224, 224)}
    with pytest.raises(ConfigError, match=r"write x:1x3x320x320 or x:\[1,3,320,320\]$"):
        parse_shapes("x:1,3,320,320,y:2x2", "--shapes")


def test_convert_then_inspect_a_real_dynamic_model(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    det = str(paddleocr_models()["det"])
    out = tmp_path / "det"
    status = main(["convert", det, "-o", str(out), "--min-shapes", "x:1x3x64x64",
                   "--opt-shapes", "x:1x3x320x320", "--max-shapes", "x:1x3x640x640", "-q"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "nodes: 672, in TensorRT: 672 (100.0%), engines: 1" in printed
    assert "in  x float32 1x3x64x64 / 1x3x320x320 / 1x3x640x640" in printed
    assert f"saved {out / 'model.onnx'}" in printed
    assert main(["inspect", str(out / "model.onnx"), "--json", "-q"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["engines"][0]["inputs"][0]["profiles"][0]["max"] == [1, 3, 640, 640]


def test_inspect_a_plain_model_without_shapes_shows_the_partition(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(models.split_chain(), str(path))
    assert main(["inspect", str(path), "--disable-ops", "Sin", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "nodes: 7, in TensorRT: 6 (85.7%), engines: 2" in printed
    assert "op type Sin is in disable_ops" in printed


def test_static_shapes_and_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(models.split_chain(), str(path))
    status = main(["convert", str(path), "-o", str(tmp_path / "h.onnx"), "--shapes", "x:2x4",
                   "--disable-ops", "Sin,add2", "--min-subgraph-size", "2", "-q"])
    assert status == 0
    hybrid = hybridtrt.load(tmp_path / "h.onnx")
    assert [len(e.subgraph.node) for e in hybrid.engines] == [3]
    assert hybrid.engines[0].profiles[0]["x"] == {"min": [2, 4], "opt": [2, 4], "max": [2, 4]}


@pytest.mark.parametrize(
    ("args", "status", "message"),
    [
        (["convert", "missing.onnx", "-o", "x.onnx"], 1, "model file not found: missing.onnx"),
        (["convert", "{model}", "-o", "{tmp}/o.onnx", "--shapes", "x:2x4", "--min-shapes", "x:1x4"],
         2, "give --shapes (static) or --min/--opt/--max-shapes, not both"),
        (["convert", "{model}", "-o", "{tmp}/o.onnx", "--min-shapes", "x:1x4"],
         2, "--min-shapes, --opt-shapes and --max-shapes go together"),
        (["convert", "{model}", "-o", "{tmp}/o.onnx"], 2,
         "need --min-shapes/--opt-shapes/--max-shapes (or --shapes) or Input(warmup_data=...)"),
        (["inspect", "{model}", "--shapes", "y:1x4"], 2, "'y' is not a model input"),
    ],
)
def test_user_errors_exit_1_or_2_with_one_clear_line(
    args: list[str], status: int, message: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(models.split_chain(), str(path))
    argv = [a.format(model=path, tmp=tmp_path) for a in args] + ["-q"]
    assert main(argv) == status
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err


def test_module_entry_point_runs_in_a_fresh_process(tmp_path: Path) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(models.split_chain(batch=2), str(path))
    done = subprocess.run([sys.executable, "-m", "hybridtrt", "convert", str(path), "-o",
                           str(tmp_path / "out"), "--disable-ops", "Sin", "-v"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "[hybridtrt] capability" in done.stderr  # -v: the stages, on stderr
    assert "engines: 2" in done.stdout


def test_run_a_hybrid_model_on_npy_inputs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    from tests.suites import ort_run

    onnx.save(models.split_chain(), str(tmp_path / "m.onnx"))
    assert main(["convert", str(tmp_path / "m.onnx"), "-o", str(tmp_path / "h.onnx"), "--min-shapes",
                 "x:1x4", "--opt-shapes", "x:2x4", "--max-shapes", "x:8x4", "--disable-ops", "Sin",
                 "-q"]) == 0
    x = np.random.default_rng(0).standard_normal((3, 4)).astype(np.float32)
    np.save(tmp_path / "x.npy", x)
    capsys.readouterr()
    status = main(["run", str(tmp_path / "h.onnx"), "--input", f"x={tmp_path / 'x.npy'}",
                   "--output-dir", str(tmp_path / "out"), "--isolate-engines", "-q"])
    printed = capsys.readouterr()
    assert status == 0
    assert "tensorrt_engine_0: onnxruntime\n" in printed.out  # (the reason: a warning, once)
    assert "y: float32 [3, 4]" in printed.out
    assert printed.err == ""  # -q silences the fallback warnings
    np.testing.assert_allclose(np.load(tmp_path / "out" / "y.npy"),
                               ort_run(models.split_chain(), {"x": x})[0], rtol=1e-6)
    assert main(["run", str(tmp_path / "h.onnx"), "--input", "x", "-q"]) == 2
    assert "--input 'x' is not NAME=FILE.npy" in capsys.readouterr().err
    assert main(["run", str(tmp_path / "h.onnx"), "--require-tensorrt", "--input",
                 f"x={tmp_path / 'x.npy'}", "-q"]) == 1
    assert "TensorRT is required" in capsys.readouterr().err
    # bench with CUDA graphs but without the GPU: named, before any work
    assert main(["bench", str(tmp_path / "h.onnx"), "--cuda-graph", "-q"]) == 2
    assert "--cuda-graph needs the GPU: add --gpu N" in capsys.readouterr().err


def test_demo_converts_runs_and_compares(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    assert main(["demo", "--model", "squeezenet", "--output-dir", str(tmp_path), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "where each engine ran:" in printed
    assert "tensorrt_engine_0: ONNX Runtime on the CPU" in printed
    assert "max |hybrid - ONNX Runtime on the original| = 0" in printed
    assert (tmp_path / "squeezenet.hybrid.onnx").exists()


def test_engine_options_reach_the_config_and_the_predictor(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(models.split_chain(), str(path))
    status = main(["convert", str(path), "-o", str(tmp_path / "h.onnx"), "--shapes", "x:2x4",
                   "--strict", "--full-plans", "--hardware-compatibility", "ampere_plus",
                   "--cache-dir", str(tmp_path / "cache"), "-q"])
    assert status == 0
    settings = hybridtrt.load(tmp_path / "h.onnx").engines[0].build_settings
    assert settings["strip_weights"] is False and settings["hardware_compatibility"] == "ampere_plus"
    capsys.readouterr()
    import numpy as np

    np.save(tmp_path / "x.npy", np.ones((2, 4), np.float32))
    assert main(["run", str(tmp_path / "h.onnx"), "--input", f"x={tmp_path / 'x.npy'}",
                 "--allow-rebuild", "--cache-dir", str(tmp_path / "cache"), "-q"]) == 0
    with pytest.raises(SystemExit) as stopped:
        main(["convert", str(path), "-o", str(tmp_path / "bad.onnx"), "--shapes", "x:2x4",
              "--hardware-compatibility", "turing", "-q"])
    assert stopped.value.code == 2
    assert "invalid choice: 'turing'" in capsys.readouterr().err


def test_output_cut_short_by_the_reader_ends_quietly(tmp_path: Path) -> None:
    from onnx import helper as h

    model = tmp_path / "m.onnx"
    nodes = [h.make_node("Sin", [f"t{k}"], [f"t{k + 1}"], name=f"sin_{k}") for k in range(3000)]
    graph = h.make_graph(nodes, "long", [h.make_tensor_value_info("t0", 1, [2])],
                         [h.make_tensor_value_info("t3000", 1, [2])])
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), model)
    # the JSON report (one entry per node left out) is far larger than a pipe's buffer
    done = subprocess.run(f"{sys.executable} -m hybridtrt inspect {model} --disable-ops Sin "
                          "--json -q | head -1", shell=True, capture_output=True, text=True,
                          timeout=120)
    assert done.stdout.startswith("{")
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_int8_without_data_names_the_flags(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    model = tmp_path / "m.onnx"
    onnx.save(models.split_chain(), model)
    status = main(["convert", str(model), "-o", str(tmp_path / "out.onnx"), "--precision", "int8",
                   "--shapes", "x:2x4", "-q"])
    assert status == 2
    assert "--precision int8 needs --calibration-data DIR" in capsys.readouterr().err


def _cli(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "hybridtrt", *args], cwd=cwd, capture_output=True,
                          text=True, timeout=120)


@pytest.mark.slow
def test_cli_habits_of_trtexec_and_polygraphy_users(tmp_path: Path) -> None:
    """Exit codes, messages, shape spellings and flags as a user meets them (one process each)."""
    import numpy as np

    onnx.save(models.split_chain(), str(tmp_path / "m.onnx"))
    done = _cli("convert", "m.onnx", "-o", "h.onnx", "--minShapes=x:1x4", "--optShapes='x':2x4",
                "--maxShapes", "x:[8,4]", "--disable-ops", "Sin,Resze", "--gpu", "0", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr.count("--disable-ops: 'Resze' name no node and no op type") == 1
    assert "[hybridtrt] capability" not in done.stderr  # stages only with -v
    assert "in  x float32 1x4 / 2x4 / 8x4" in done.stdout
    np.savez(tmp_path / "x.npz", x=np.ones((3, 4), np.float32))
    cases = [  # (args, exit status, text in stderr, text in stdout)
        (["--version"], 0, "", f"hybridtrt {hybridtrt.__version__}"),
        (["run", "h.onnx"], 0, "runs in ONNX Runtime (inlined): TensorRT is turned off",
         "x: random float32 [2, 4] (seed 0)"),
        (["run", "h.onnx", "--inputs", "x=x.npz", "-q"], 0, "", "y: float32 [3, 4]"),
        (["run", "h.onnx", "--shapes", "x:64x4", "-q"], 1,
         "got x: [64, 4]. Convert again with a wider Input range, or add --allow-rebuild", ""),
        (["run", "h.onnx", "--require-tensorrt", "-q"], 1, "TensorRT is required", ""),
        (["run", "h.onnx", "--bogus"], 2, "usage: hybridtrt run", ""),
        (["convert", "m.onnx", "-o", "o.onnx", "--shapes", "x:1,3,320,320"], 2,
         "write x:1x3x320x320 or x:[1,3,320,320]", ""),
        (["convert", "m.onnx", "-o", "o.onnx", "--shapes", "x:2x4", "--calibration-data", "."], 2,
         "--calibration-data is for --precision int8 (this is --precision fp32)", ""),
        (["convert", "m.onnx", "-o", "o.onnx"], 2, "need --min-shapes/--opt-shapes/--max-shapes", ""),
        (["convert", "missing.onnx", "-o", "o.onnx"], 1, "model file not found", ""),
        (["inspect", "m.onnx", "--disable-ops", "Sin", "--json", "r.json", "-q"], 0, "",
         "in  x float32 Nx4"),
        (["bench", "h.onnx", "--iterations", "3", "--segment-runs", "0", "--json", "-q"], 0, "",
         '"p95_ms"'),
        (["convert", "--help"], 0, "", "(default fp32)"),
    ]
    for args, status, err, out in cases:
        done = _cli(*args, cwd=tmp_path)
        assert done.returncode == status, (args, done.stderr)
        assert err in done.stderr and out in done.stdout, (args, done.stdout, done.stderr)
        assert "Traceback" not in done.stderr and "config." not in done.stderr, args
    assert json.loads((tmp_path / "r.json").read_text())["engines"][0]["inputs"][0]["shape"] == ["N", 4]
    assert "``" not in _cli("--help", cwd=tmp_path).stdout  # no RST markup in --help
    helped = " ".join(_cli("convert", "--help", cwd=tmp_path).stdout.split())
    assert "(default percentile)" in helped and "(default none)" in helped and "--device" not in helped


def test_engines_are_listed_in_number_order(tmp_path: Path) -> None:
    """On PP-OCR det without Resize the graph holds engine 5 before engines 3, 4, 2 and 1."""
    det = str(paddleocr_models()["det"])
    assert main(["convert", det, "-o", str(tmp_path / "d.onnx"), "--shapes", "x:1x3x64x64",
                 "--disable-ops", "Resize", "-q"]) == 0
    names = [n.name for n in hybridtrt.load(tmp_path / "d.onnx").model.graph.node
             if n.op_type == "tensorrt_engine"]
    assert names != sorted(names)  # (else this test shows nothing)
    for args, prefix in ((["inspect", "d.onnx", "-q"], "engine "), (["run", "d.onnx", "-q"], "")):
        done = _cli(*args, cwd=tmp_path)
        assert done.returncode == 0, done.stderr
        listed = re.findall(rf"^{prefix}(tensorrt_engine_\d+):", done.stdout, re.MULTILINE)
        assert listed == [f"tensorrt_engine_{k}" for k in range(len(names))]


def test_int8_convert_prints_no_lines_of_onnx_runtimes_quantizer(tmp_path: Path) -> None:
    """ORT's quantizer logs "Created a copy of bias input" on the root logger (9 times here)."""
    import numpy as np

    calibration = tmp_path / "calib"
    calibration.mkdir()
    rng = np.random.default_rng(0)
    for k in range(2):
        np.save(calibration / f"{k}.npy", rng.random((1, 3, 224, 224), dtype=np.float32))
    squeezenet = hybridtrt.examples.onnx_light_model("squeezenet")
    done = _cli("convert", str(squeezenet), "-o", "sq8.onnx", "--precision", "int8",
                "--calibration-data", str(calibration), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert done.stderr == "" and "saved sq8.onnx" in done.stdout
    verbose = _cli("convert", str(squeezenet), "-o", "sq8.onnx", "--precision", "int8",
                   "--calibration-data", str(calibration), "-v", cwd=tmp_path)
    assert "[hybridtrt] capability" in verbose.stderr and "Created a copy" not in verbose.stderr


def test_bad_calibration_files_and_output_folders_are_one_clear_line(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    import numpy as np

    path = tmp_path / "m.onnx"
    onnx.save(models.conv_classifier(), str(path))
    shapes: list[str] = []
    for name, content in (("pickled.npy", None), ("broken.npz", b"PK\x03\x04 not a zip")):
        folder = tmp_path / name.split(".")[0]
        folder.mkdir()
        if content is None:
            np.save(folder / name, np.array([{"a": 1}], dtype=object), allow_pickle=True)
        else:
            (folder / name).write_bytes(content)
        argv = ["convert", str(path), "-o", str(tmp_path / "o.onnx"), *shapes, "--precision",
                "int8", "--calibration-data", str(folder), "-q"]
        assert main(argv) == 2, name
        err = capsys.readouterr().err
        assert f"calibration_data file '{folder / name}' cannot be read as NumPy data" in err, err
        assert "Traceback" not in err
    hybrid = tmp_path / "h.onnx"
    assert main(["convert", str(path), "-o", str(hybrid), *shapes, "-q"]) == 0
    assert main(["run", str(hybrid), "--output-dir", "/proc/nope", "-q"]) == 1
    err = capsys.readouterr().err
    assert "--output-dir: cannot write /proc/nope/" in err and "Traceback" not in err


def test_convert_says_what_the_accuracy_guard_kept_in_fp32(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(models.fp16_overflow(), str(path))
    out = str(tmp_path / "h.onnx")
    common = ["convert", str(path), "-o", out, "--precision", "fp16", "--no-precision-guard",
              "--min-subgraph-size", "1", "-q"]
    assert main(common) == 0
    printed = capsys.readouterr().out
    assert re.search(r"^accuracy guard: tensorrt_engine_0 keeps 2 more node\(s\) in FP32 "
                     r"\(scale_up, scale_down\): output 'y' relative L2 inf -> \S+ \(tolerance "
                     r"0.005\), \d+ runs through ONNX Runtime$", printed, re.M), printed
    assert re.search(r"^accuracy guard: \d+\.\d\d s in all$", printed, re.M)
    assert main([*common, "--json", "-"]) == 0  # no TensorRT here: what measured says so
    engine = json.loads(capsys.readouterr().out)["engines"][0]
    assert engine["accuracy_measured_by"] == "onnxruntime" and engine["accuracy_demoted"]
    assert main([*common, "--no-accuracy-check"]) == 0
    assert "accuracy guard" not in capsys.readouterr().out
    assert main([*common, "--strict-accuracy"]) == 2 - 1  # a failure of the model, not of usage
    assert "engine tensorrt_engine_0: output 'y' errs by inf" in capsys.readouterr().err
    assert main([*common, "--accuracy-tolerance", "y=1e-3,z=0.1"]) == 0
    assert "(tolerance 0.001)" in capsys.readouterr().out
    assert main([*common, "--accuracy-tolerance", "tight"]) == 2
    assert "--accuracy-tolerance takes a number (1e-2) or NAME=TOL pairs" in capsys.readouterr().err


def test_fp16_convert_with_ops_run_float_prints_nothing_but_the_result(tmp_path: Path) -> None:
    """Issue 20 saw ~80 lines of protobuf NodeProto text on stderr for this command."""
    squeezenet = hybridtrt.examples.onnx_light_model("squeezenet")
    done = _cli("convert", str(squeezenet), "-o", "sq16.onnx", "--precision", "fp16",
                "--ops-run-float", "Softmax,conv1", cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert "NodeProto" not in done.stderr and "input:" not in done.stderr, done.stderr
    assert done.stderr.count("\n") <= 2, done.stderr  # at most the guard's own warnings
    assert "saved sq16.onnx" in done.stdout


def test_a_bad_target_cc_names_the_flag(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    path = tmp_path / "m.onnx"
    onnx.save(models.split_chain(), str(path))
    assert main(["convert", str(path), "-o", str(tmp_path / "out"), "--target-cc", "banana"]) == 2
    said = capsys.readouterr().err
    assert "--target-cc" in said and "target_compute_capabilities" not in said
    assert main(["convert", str(path), "-o", str(tmp_path / "out"), "--backend", "tensorrt",
                 "--target-cc", "8.6"]) == 2
    said = capsys.readouterr().err
    assert "--backend tensorrt_rtx" in said and "target_compute_capabilities" not in said
