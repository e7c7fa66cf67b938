"""Accuracy of FP16 / BF16 / INT8 engines against FP32, measured through ONNX Runtime.

Every engine's typed subgraph (casts for FP16/BF16, Q/DQ for INT8) runs in ONNX Runtime on
the CPU, so these numbers measure the graph transformation hybridtrt writes for TensorRT, not
TensorRT's kernels (BF16 is emulated: FP32 compute with every BF16 value rounded). Models: the
PaddleOCR recognizer, detector and direction classifier from the rapidocr wheel on text
rendered with Pillow (evaluated on other samples than the warm-up and calibration ones), a
small CNN and the pattern of a classifier exported from TensorFlow (``clf``), built in code,
and the light CNNs the onnx wheel ships (``resnet50``, ``vgg19``...: real architectures with
constant weights, FP16/BF16 only, 10 test inputs).

    python benchmarks/precision_accuracy.py [--modes fp16 bf16 int8 int8:8]
        [--models rec det cls cnn clf resnet50 ...]
        [--unguarded]

``int8:N`` is INT8 with ``int8_fp32_layers=N`` (the N most sensitive layers kept FP32).
``max_abs`` is the largest absolute error over the test inputs divided by the FP32 output's
range, and ``bar`` says whether the test error meets the bar (relative L2 <= 1e-2 or max_abs
<= 1e-3 for FP16/BF16, the same rule with 0.2 for INT8). The accuracy guard's columns give,
on the warm-up inputs, the worst engine output's error as a share of what the guard allows
(``accuracy.excess``: at most 1 passes, the rule the guard applies), the nodes it kept FP32 and
its time; ``--unguarded`` adds rows converted with ``accuracy_check=False`` (mode ``fp16-`` /
``bf16-`` / ``int8-``), the error on the test inputs without the guard.
"""

from __future__ import annotations

import argparse
import dataclasses
import logging
import sys
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.compiler.precision.accuracy import excess, within
from hybridtrt.examples import (ctc_decode, det_input, onnx_light_model, paddleocr_model,
                                rec_input, render_text)
from hybridtrt.runtime import Config, create_predictor

WORDS = ("hybrid", "TensorRT", "engine", "Paddle", "ONNX", "runtime", "quick", "brown", "fox",
         "jumps", "over", "lazy", "dog", "2026", "42", "model", "precision", "cast", "scale")


@dataclasses.dataclass(frozen=True)
class Row:
    """One model in one precision, against FP32 on the same inputs."""

    model: str
    mode: str
    max_abs: float  # of the FP32 output's range
    rel_l2: float
    agreement: float  # text agreement (rec), mask IoU (det), top-1 agreement (cnn)
    metric: str
    fp32_nodes: int
    quantize_nodes: int
    guard_before: float = float("nan")  # worst engine output's excess (<= 1 passes), warm-up
    guard_after: float = float("nan")
    demoted: int = 0  # nodes the accuracy guard kept FP32
    guard_seconds: float = 0.0
    low_nodes: int = 0  # nodes left in low precision (FP16/BF16), or quantized layers (INT8)

    @property
    def bar(self) -> float:
        """The issue's bound on the test inputs: 1e-2 for FP16/BF16, 0.2 for INT8."""
        return 0.2 if self.mode.startswith("int8") else 1e-2

    @property
    def ok(self) -> bool:
        return within(self.rel_l2, self.max_abs, self.bar)


def sentences(count: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=int(rng.integers(2, 4)))) for _ in range(count)]


def rec_feeds(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    return [{"x": rec_input(render_text([s], seed=seed + k))}
            for k, s in enumerate(sentences(count, seed))]


def cls_feeds(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    """Text lines for the direction classifier (48x192), every other one upside down."""
    return [{"x": rec_input(render_text([s], seed=seed + k)[::(-1) ** k, ::(-1) ** k].copy(),
                            width=192)}
            for k, s in enumerate(sentences(count, seed))]


def det_feeds(count: int, seed: int, size: int = 320) -> list[dict[str, np.ndarray]]:
    texts = sentences(3 * count, seed)
    return [{"x": det_input(render_text(texts[3 * k:3 * k + 3], (size, size), seed=seed + k))}
            for k in range(count)]


def small_cnn(seed: int = 0) -> onnx.ModelProto:
    """conv-bn-relu x3, global pool, gemm, softmax: 10 classes from 3x64x64 images."""
    rng = np.random.default_rng(seed)
    weights, nodes, channels, last = [], [], [3, 16, 32, 64], "image"
    for k in range(3):
        cin, cout = channels[k], channels[k + 1]
        w = rng.normal(0, (2.0 / (cin * 9)) ** 0.5, (cout, cin, 3, 3)).astype(np.float32)
        weights += [numpy_helper.from_array(w, f"w{k}")]
        for name, value in (("scale", rng.uniform(0.5, 1.5, cout)), ("bias", rng.normal(0, .1, cout)),
                            ("mean", rng.normal(0, .1, cout)), ("var", rng.uniform(.5, 2, cout))):
            weights.append(numpy_helper.from_array(value.astype(np.float32), f"{name}{k}"))
        nodes += [
            helper.make_node("Conv", [last, f"w{k}"], [f"c{k}"], name=f"conv{k}", pads=[1] * 4,
                             strides=[2, 2] if k else [1, 1]),
            helper.make_node("BatchNormalization", [f"c{k}", f"scale{k}", f"bias{k}", f"mean{k}",
                                                    f"var{k}"], [f"b{k}"], name=f"bn{k}"),
            helper.make_node("Relu", [f"b{k}"], [f"r{k}"], name=f"relu{k}"),
        ]
        last = f"r{k}"
    fc = rng.normal(0, 0.2, (64, 10)).astype(np.float32)
    weights += [numpy_helper.from_array(fc, "fc"), numpy_helper.from_array(np.zeros(10, np.float32), "fc_b")]
    nodes += [helper.make_node("GlobalAveragePool", [last], ["pool"], name="pool"),
              helper.make_node("Flatten", ["pool"], ["flat"], name="flat"),
              helper.make_node("Gemm", ["flat", "fc", "fc_b"], ["logits"], name="fc"),
              helper.make_node("Softmax", ["logits"], ["probs"], name="softmax")]
    graph = helper.make_graph(nodes, "small_cnn",
                              [helper.make_tensor_value_info("image", TensorProto.FLOAT, [1, 3, 64, 64])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, 10])],
                              weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def _classifier(seed: int, head: tuple[np.ndarray, np.ndarray] | None,
                vocab: int = 64, length: int = 16, dim: int = 32, classes: int = 8) -> onnx.ModelProto:
    rng = np.random.default_rng(seed)

    def w(name: str, value: object) -> onnx.TensorProto:
        return numpy_helper.from_array(np.asarray(value, np.float32), name)

    weights = [
        w("emb", rng.normal(0, 1, (vocab, dim))), w("id_scale", np.full((1, 1, dim), 0.5)),
        w("conv_w", rng.normal(0, 12 / np.sqrt(dim * 3), (dim, dim, 3))),
        w("conv_b", rng.normal(0, 2, dim)), w("mm_w", rng.normal(0, 8 / np.sqrt(dim), (dim, dim))),
        w("mm_b", rng.normal(0, 1, dim)), w("two", 2.0), w("eps", 1e-3), w("n", float(dim)),
        w("gamma", rng.uniform(0.5, 1.0, dim)), w("beta", rng.normal(0, 0.1, dim)),
        w("center", head[1] if head else np.zeros((1, dim, 1))),
        w("head_w", head[0] if head else np.zeros((dim, classes))),
        numpy_helper.from_array(np.array([-1], np.int64), "last"),
        numpy_helper.from_array(np.array([1, dim], np.int64), "flat_shape"),
    ]
    node = helper.make_node
    nodes = [
        node("Gather", ["emb", "ids"], ["e"], name="embedding"),
        node("Cast", ["ids"], ["idf"], name="cast_ids", to=TensorProto.FLOAT),
        node("Unsqueeze", ["idf", "last"], ["idu"], name="unsqueeze_ids"),
        node("Mul", ["idu", "id_scale"], ["id_feature"], name="id_feature"),
        node("Add", ["e", "id_feature"], ["x0"], name="add_ids"),
        node("Transpose", ["x0"], ["xc"], name="to_channels", perm=[0, 2, 1]),
        node("Conv", ["xc", "conv_w", "conv_b"], ["c"], name="conv", pads=[1, 1]),
        node("Transpose", ["c"], ["ct"], name="to_rows", perm=[0, 2, 1]),
        node("MatMul", ["ct", "mm_w"], ["m"], name="dense"),
        node("Add", ["m", "mm_b"], ["hidden"], name="dense_bias"),
        node("ReduceMean", ["hidden"], ["mean"], name="ln/mean", axes=[-1]),
        node("Sub", ["hidden", "mean"], ["d"], name="ln/sub"),
        node("Pow", ["d", "two"], ["sq"], name="ln/pow"),
        node("ReduceSum", ["sq", "last"], ["ssum"], name="ln/sum"),
        node("Div", ["ssum", "n"], ["var"], name="ln/var"),
        node("Add", ["var", "eps"], ["var_eps"], name="ln/add_eps"),
        node("Sqrt", ["var_eps"], ["std"], name="ln/sqrt"),
        node("Div", ["d", "std"], ["normed"], name="ln/div"),
        node("Mul", ["normed", "gamma"], ["scaled"], name="ln/gamma"),
        node("Add", ["scaled", "beta"], ["ln"], name="ln/beta"),
        node("Tanh", ["ln"], ["t"], name="tanh"),
        node("Exp", ["t"], ["g"], name="gate"),
        node("Mul", ["t", "g"], ["tg"], name="gated"),
        node("Transpose", ["tg"], ["tc"], name="pool_layout", perm=[0, 2, 1]),
        node("GlobalMaxPool", ["tc"], ["pooled"], name="pool"),
        node("Add", ["pooled", "center"], ["centered"], name="pool_center"),
        node("Reshape", ["centered", "flat_shape"], ["flat"], name="flatten"),
        node("MatMul", ["flat", "head_w"], ["logits"], name="head"),
        node("Exp", ["logits"], ["ex"], name="softmax/exp"),
        node("ReduceSum", ["ex", "last"], ["den"], name="softmax/sum"),
        node("Div", ["ex", "den"], ["probs"], name="softmax/div"),
    ]
    graph = helper.make_graph(nodes, "tf_classifier",
                              [helper.make_tensor_value_info("ids", TensorProto.INT32, [1, length])],
                              [helper.make_tensor_value_info("probs", TensorProto.FLOAT, [1, classes]),
                               helper.make_tensor_value_info("flat", TensorProto.FLOAT, [1, dim])],
                              weights)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)], ir_version=9)


def tf_classifier(seed: int = 0) -> onnx.ModelProto:
    """The pattern of a classifier exported from TensorFlow: int32 ids -> embedding (Gather)
    plus the ids cast to float, Conv, MatMul, LayerNorm written out (ReduceMean, Sub, Pow,
    ReduceSum, Div, Sqrt, Div), Tanh, Exp, GlobalMaxPool, a softmax written as Exp/ReduceSum/Div.

    Random weights, scaled so the LayerNorm's variance passes FP16's range (7.7e6) while every
    other value stays small; the head is centred and scaled on 64 random inputs so FP32 picks
    varied classes.
    """
    probe = ort.InferenceSession(_classifier(seed, None).SerializeToString(),
                                 providers=["CPUExecutionProvider"])
    pooled = np.concatenate([probe.run(["flat"], f)[0] for f in classifier_feeds(64, seed + 1)])
    head = np.random.default_rng(seed + 2).normal(0, 1, (pooled.shape[1], 8))
    head *= 2.5 / (pooled @ head).std(0)
    model = _classifier(seed, (head, -pooled.mean(0).reshape(1, -1, 1)))
    del model.graph.output[1]  # "flat" was for the probe only
    return model


def classifier_feeds(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"ids": rng.integers(0, 64, (1, 16)).astype(np.int32)} for _ in range(count)]


def cnn_feeds(count: int, seed: int) -> list[dict[str, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [{"image": rng.normal(0, 1, (1, 3, 64, 64)).astype(np.float32)} for _ in range(count)]


def light_feeds(name: str) -> Callable[[int, int], list[dict[str, np.ndarray]]]:
    """Normal noise of the input's shape for an onnx light CNN."""
    def feeds(count: int, seed: int) -> list[dict[str, np.ndarray]]:
        model = onnx.load(str(onnx_light_model(name)), load_external_data=False)
        weights = {t.name for t in model.graph.initializer}
        value = next(v for v in model.graph.input if v.name not in weights)
        dims = [d.dim_value for d in value.type.tensor_type.shape.dim]
        rng = np.random.default_rng(seed)
        return [{value.name: rng.standard_normal(dims).astype(np.float32)} for _ in range(count)]
    return feeds


@dataclasses.dataclass(frozen=True)
class Case:
    model: Callable[[], onnx.ModelProto | str]
    feeds: Callable[[int, int], list[dict[str, np.ndarray]]]
    compare: Callable[[list[np.ndarray], list[np.ndarray]], tuple[float, str]]
    samples: int | None = None  # at most this many test inputs (slow models)
    modes: tuple[str, ...] | None = None  # the precisions measured (None: all)


def _text_agreement(path: str) -> Callable[[list[np.ndarray], list[np.ndarray]], tuple[float, str]]:
    def compare(ref: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, str]:
        # Spaces at the ends are the margins' blank paper, read either way: not text.
        same = [[t.strip() for t in ctc_decode(a, path)] == [t.strip() for t in ctc_decode(b, path)]
                for a, b in zip(ref, got)]
        return float(np.mean(same)), "text agreement"
    return compare


def _mask_iou(ref: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, str]:
    a, b = np.concatenate([r.ravel() for r in ref]) > 0.3, np.concatenate([g.ravel() for g in got]) > 0.3
    return float((a & b).sum() / max((a | b).sum(), 1)), "text-mask IoU"


def _top1(ref: list[np.ndarray], got: list[np.ndarray]) -> tuple[float, str]:
    return float(np.mean([a.argmax() == b.argmax() for a, b in zip(ref, got)])), "top-1 agreement"


CASES: dict[str, Case] = {
    "rec": Case(lambda: str(paddleocr_model("rec")), rec_feeds,
                _text_agreement(str(paddleocr_model("rec")))),
    "det": Case(lambda: str(paddleocr_model("det")), det_feeds, _mask_iou),
    "cls": Case(lambda: str(paddleocr_model("cls")), cls_feeds, _top1),
    "cnn": Case(small_cnn, cnn_feeds, _top1),
    "clf": Case(tf_classifier, classifier_feeds, _top1),  # the TensorFlow classifier pattern
}
LIGHT = sorted(p.stem.removeprefix("light_") for p in onnx_light_model().parent.glob("light_*.onnx"))
CASES.update({n: Case(lambda n=n: str(onnx_light_model(n)), light_feeds(n), _top1, 10,
                      ("fp16", "bf16")) for n in LIGHT})


def measure(name: str, mode: str, samples: int = 40, calibration: int = 16,
            device: str = "cpu") -> Row:
    """Convert ``name`` in ``mode``, run it on fresh inputs and compare with FP32 ORT (CPU).

    On ``device="cuda"`` the hybrid model runs on ONNX Runtime's CUDA provider, where FP16
    nodes compute in FP16 for real (no emulation; BF16 stays emulated).
    """
    case = CASES[name]
    mode, unguarded = mode.rstrip("-"), mode.endswith("-")  # "fp16-": the accuracy guard off
    model = case.model()
    feeds = case.feeds(min(samples, case.samples or samples), 1000)
    samples_seen = case.feeds(calibration, 0)  # warm-up and calibration: not the test inputs
    name_ = next(iter(feeds[0]))
    precision, _, kept = mode.partition(":")  # "int8:8": INT8 with 8 layers kept FP32
    config = TensorRTConfig(
        inputs=[Input(name=name_, warmup_data=[f[name_] for f in samples_seen[:6]])],
        precision_mode=precision,
        calibration_data=samples_seen if precision == "int8" else None,
        int8_fp32_layers=int(kept or 0),
        accuracy_check=not unguarded,
    )
    hybrid = convert(model, config)
    proto = model if isinstance(model, onnx.ModelProto) else onnx.load(model)
    reference = ort.InferenceSession(proto.SerializeToString(), providers=["CPUExecutionProvider"])
    with tempfile.TemporaryDirectory() as folder:
        path = hybrid.save(Path(folder) / "model.hybrid.onnx")
        settings = Config(path)
        if device == "cuda":
            settings.enable_use_gpu(0, 0)
        predictor = create_predictor(settings)
        got = [list(predictor.run_dict(f).values())[0] for f in feeds]
    ref = [reference.run(None, f)[0] for f in feeds]
    spread = float(np.ptp(np.concatenate([a.ravel() for a in ref])))
    worst = max(float(np.abs(a - b).max()) for a, b in zip(ref, got))
    max_abs = worst / spread if spread else (0.0 if worst == 0 else float("inf"))
    rel_l2 = float(np.sqrt(sum(np.sum((a - b) ** 2) for a, b in zip(ref, got))
                           / sum(np.sum(a ** 2) for a in ref)))
    agreement, metric = case.compare(ref, got)
    engines = hybrid.report().engines
    checked = [e for e in engines if e.accuracy_after]
    return Row(name, mode + "-" * unguarded, max_abs, rel_l2, agreement, metric,
               sum(len(e.fp32_nodes) for e in engines),
               sum(_quantize_nodes(hybrid, e.name) for e in engines),
               _worst(checked, "accuracy_before"), _worst(checked, "accuracy_after"),
               sum(len(e.accuracy_demoted) for e in engines),
               hybrid.stage_seconds.get("accuracy guard", 0.0),
               sum(_low_nodes(hybrid, e.name) for e in engines))


def _worst(engines: Sequence[object], field: str) -> float:
    errors = [excess(o["rel_l2"], o["max_abs"], o["tolerance"])
              for e in engines for o in getattr(e, field)]
    return max(errors) if errors else float("nan")


def _low_nodes(hybrid: object, engine: str) -> int:
    """Nodes of the engine computing in FP16/BF16 (INT8: the quantized layers' Q nodes)."""
    record = next(r for r in hybrid.engines if r.name == engine)  # type: ignore[attr-defined]
    mode = record.precision.get("mode")
    if mode == "int8":
        return int(record.precision.get("quantize_nodes", 0))
    if mode not in ("fp16", "bf16"):
        return 0
    graph = record.subgraph  # the typed graph: a node is low when it makes a 16-bit value
    low = {v.name for v in graph.value_info
           if v.type.tensor_type.elem_type in (TensorProto.FLOAT16, TensorProto.BFLOAT16)}
    return sum(n.op_type != "Cast" and any(o in low for o in n.output) for n in graph.node)


def _quantize_nodes(hybrid: object, engine: str) -> int:
    record = next(r for r in hybrid.engines if r.name == engine)  # type: ignore[attr-defined]
    return int(record.precision.get("quantize_nodes", 0))


def table(rows: Sequence[Row]) -> str:
    lines = [f"{'model':<13}{'mode':<8}{'max_abs':>10}{'rel_l2':>10}{'bar':>5}{'agreement':>11}"
             f"  {'fp32_nodes':>10}{'low_nodes':>10}{'q_nodes':>9}{'guard_before':>14}"
             f"{'guard_after':>13}{'demoted':>9}{'guard_s':>9}  metric"]
    for r in rows:
        lines.append(f"{r.model:<13}{r.mode:<8}{r.max_abs:>10.2e}{r.rel_l2:>10.2e}"
                     f"{'ok' if r.ok else 'over':>5}{r.agreement:>11.3f}  {r.fp32_nodes:>10}"
                     f"{r.low_nodes:>10}{r.quantize_nodes:>9}{r.guard_before:>14.2f}"
                     f"{r.guard_after:>13.2f}{r.demoted:>9}{r.guard_seconds:>9.1f}  {r.metric}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--modes", nargs="+", default=["fp16", "bf16", "int8", "int8:8"])
    parser.add_argument("--models", nargs="+", default=list(CASES), choices=list(CASES))
    parser.add_argument("--samples", type=int, default=40, help="test inputs per model")
    parser.add_argument("--unguarded", action="store_true",
                        help="also convert FP16/BF16 with the accuracy guard off")
    parser.add_argument("--device", choices=["cpu", "cuda"], default="cpu",
                        help="where the hybrid model runs (the FP32 reference runs on the CPU)")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.ERROR)
    modes = [m for mode in args.modes
             for m in ([mode + "-", mode] if args.unguarded and mode in ("fp16", "bf16", "int8")
                       else [mode])]
    rows = [measure(m, mode, args.samples, device=args.device) for m in args.models
            for mode in modes if CASES[m].modes is None or mode.rstrip("-") in CASES[m].modes]
    print(f"{args.samples} test inputs per model; reference: FP32 ONNX Runtime (CPU) on the "
          f"original model; typed engines run through ONNX Runtime on {args.device} (BF16 "
          "emulated" + (", FP16 emulated by rounding after every node)" if args.device == "cpu"
                        else ", FP16 in CUDA kernels)"))
    print(table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
