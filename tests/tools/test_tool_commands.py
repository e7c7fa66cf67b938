"""``hybridtrt bench | profile | compare`` as a user runs them."""

from __future__ import annotations

import json

import pytest

from hybridtrt import TensorRTConfig, convert
from hybridtrt.cli import main
from tests.tools.conftest import PROFILE


def test_bench_prints_its_tables_and_writes_json(two_engines, tmp_path, capsys):
    _, hybrid = two_engines
    out = tmp_path / "bench.json"
    status = main(["bench", str(hybrid), "--iterations", "5", "--warmup", "1", "--segment-runs",
                   "2", "--compare", "ort", "--shapes", "x:4x4", "--json", str(out),
                   "--isolate-engines", "-q"])
    printed = capsys.readouterr().out
    assert status == 0
    assert "hybridtrt / onnxruntime (median):" in printed
    assert "predictor, 2 boundaries" in printed and f"wrote {out}" in printed
    data = json.loads(out.read_text())
    assert data["shapes"] == {"x": [4, 4]} and data["hybrid"]["runs"] == 5
    assert data["settings"]["compare_ort"] is True


def test_profile_writes_a_chrome_trace(two_engines, tmp_path, capsys):
    _, hybrid = two_engines
    trace = tmp_path / "run.trace.json"
    assert main(["profile", str(hybrid), "--runs", "2", "--top", "3", "-o", str(trace),
                 "--isolate-engines", "-q"]) == 0
    printed = capsys.readouterr().out
    assert "2 profiled run(s); top 3 of" in printed and f"wrote {trace}" in printed
    events = json.loads(trace.read_text())["traceEvents"]
    assert sum(e.get("name") == "thread_name" for e in events) == 3


def test_compare_exits_1_and_names_the_first_diverging_segment(two_engines, tmp_path, capsys):
    original, hybrid = two_engines
    assert main(["compare", str(original), str(hybrid), "--shapes", "x:2x4", "-q"]) == 0
    assert "PASSED" in capsys.readouterr().out
    bf16 = convert(original, TensorRTConfig(inputs=[PROFILE], disable_ops=["Sin"],
                                            min_subgraph_size=1, precision_mode="bf16"))
    path = bf16.save(tmp_path / "bf16.onnx")
    report = tmp_path / "compare.json"
    status = main(["compare", str(original), str(path), "--atol", "1e-7", "--rtol", "1e-7",
                   "--json", str(report), "-q"])
    printed = capsys.readouterr().out
    assert status == 1
    assert "first diverging segment: tensorrt_engine_0" in printed
    assert json.loads(report.read_text())["first_divergence"] == "tensorrt_engine_0"


@pytest.mark.parametrize("argv, status, message", [
    (["bench", "{original}"], 1, "error: input 'x' has dynamic shape ['N', 4]: give it with "
                                 "--shapes x:Nx4"),
    (["bench", "{hybrid}", "--iterations", "0"], 2, "error: iterations must be >= 1, got 0"),
    (["profile", "{hybrid}", "--input", "x=missing.npy"], 1, "error: --input x: cannot read "
                                                            "missing.npy as a .npy array"),
    (["compare", "{original}", "{hybrid}", "--shapes", "z:1x4"], 1,
     "error: ['z'] are not model inputs; the inputs are ['x']"),
])
def test_tool_errors_exit_1_or_2_with_one_clear_line(two_engines, capsys, argv, status, message):
    original, hybrid = two_engines
    args = [a.format(original=original, hybrid=hybrid) for a in argv]
    assert main(args + ["-q"]) == status
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err


def test_inspect_draws_the_picture_of_a_plain_and_a_hybrid_model(two_engines, tmp_path, capsys):
    original, hybrid = two_engines
    page, svg = tmp_path / "p.html", tmp_path / "p.svg"
    assert main(["inspect", str(hybrid), "--html", str(page), "--svg", str(svg), "-q"]) == 0
    printed = capsys.readouterr().out
    assert "engines: 2" in printed and f"wrote {page}" in printed and f"wrote {svg}" in printed
    assert page.read_text().count('data-group="tensorrt_engine_1"') >= 1
    assert svg.read_text().startswith("<svg") or "<svg" in svg.read_text()[:200]
    plain = tmp_path / "plain.svg"
    assert main(["inspect", str(original), "--disable-ops", "Sin", "--min-subgraph-size", "1",
                 "--svg", str(plain), "-q"]) == 0
    assert 'data-group="tensorrt_engine_1"' in plain.read_text()
    assert main(["inspect", str(hybrid), "--html", str(tmp_path / "p.txt"), "-q"]) == 2
    assert "must end in .html or .svg" in capsys.readouterr().err
    assert not (tmp_path / "p.txt").exists()


def test_compare_with_an_unrelated_model_fails_naming_the_missing_outputs(two_engines, tmp_path, capsys):
    import onnx
    from onnx import helper as h

    _, hybrid = two_engines
    other = tmp_path / "other.onnx"
    graph = h.make_graph([h.make_node("Relu", ["x"], ["r"])], "other",
                         [h.make_tensor_value_info("x", 1, ["N", 4])],
                         [h.make_tensor_value_info("r", 1, ["N", 4])])
    onnx.save(h.make_model(graph, opset_imports=[h.make_opsetid("", 17)]), other)
    assert main(["compare", str(other), str(hybrid), "-q"]) == 1
    printed = capsys.readouterr().out
    assert "FAILED: the original model has no output ['y']" in printed


def test_output_paths_are_checked_before_the_work(two_engines, tmp_path, capsys):
    _, hybrid = two_engines
    blocker = tmp_path / "afile"
    blocker.write_text("")
    for argv in (["bench", str(hybrid), "--json", str(blocker / "b.json")],
                 ["profile", str(hybrid), "-o", str(blocker / "t.json")],
                 ["compare", str(hybrid), str(hybrid), "--json", str(tmp_path)]):
        assert main(argv + ["-q"]) == 2
        err = capsys.readouterr().err
        assert "is a file, not a directory" in err or "is a directory" in err
    assert main(["profile", str(hybrid), "--top", "0", "-q"]) == 2
    assert "--top must be >= 1, got 0" in capsys.readouterr().err


def test_written_files_are_readable_by_others(two_engines, tmp_path):
    _, hybrid = two_engines
    out = tmp_path / "b.json"
    assert main(["bench", str(hybrid), "--iterations", "2", "--warmup", "0", "--segment-runs", "0",
                 "--json", str(out), "-q"]) == 0
    assert out.stat().st_mode & 0o044 == 0o044  # as a plain open() would make it (umask 022)
