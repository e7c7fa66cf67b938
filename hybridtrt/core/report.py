"""The partition report: which ops went to TensorRT, why the rest did not, and each engine."""

from __future__ import annotations

import dataclasses
import json
import re
from collections import Counter
from collections.abc import Mapping, Sequence
from typing import Any

import onnx

from hybridtrt.converters.registry import dtype_name
from hybridtrt.core.format import EngineRecord
from hybridtrt.trt.library import RTX, TENSORRT, label

__all__ = ["EngineSummary", "OpSummary", "OutsideNode", "Report", "accuracy_line",
           "engine_summary", "name_order", "op_table"]


@dataclasses.dataclass(frozen=True)
class OutsideNode:
    """A node left to ONNX Runtime, and why."""

    name: str
    op_type: str
    reason: str


@dataclasses.dataclass(frozen=True)
class OpSummary:
    """One row of the op table: how many nodes of an op type run in TensorRT, and why not the rest."""

    op_type: str
    count: int
    in_tensorrt: int
    reasons: tuple[tuple[str, int], ...]


@dataclasses.dataclass(frozen=True)
class EngineSummary:
    """One ``tensorrt_engine`` node: size, I/O with their shape ranges, build status, precision.

    ``fp32_nodes`` lists ``(name, op type, reason)`` of the nodes kept in FP32 in an FP16/BF16
    engine; ``quantization`` says where an INT8 engine's Q/DQ scales came from. The accuracy
    guard's outcome: ``accuracy_before`` and ``accuracy_after`` hold one ``{"output", "rel_l2",
    "max_abs", "tolerance"}`` per output (empty when unchecked), ``accuracy_demoted`` the
    ``(name, op type, output, relative L2)`` of each node it kept in FP32, ``accuracy_runs`` its
    runs of the engine (its time is ``HybridModel.stage_seconds["accuracy guard"]``), and
    ``accuracy_measured_by`` what ran the lowered engine: ``"tensorrt"`` (the engine itself) or
    ``"onnxruntime"`` (its emulation on the CPU).
    """

    name: str
    nodes: int
    op_types: tuple[tuple[str, int], ...]
    inputs: tuple[dict[str, Any], ...]
    outputs: tuple[dict[str, Any], ...]
    status: str
    status_reason: str
    precision: str
    fp32_nodes: tuple[tuple[str, str, str], ...] = ()
    quantization: str = ""
    built_with: str = ""
    accuracy_before: tuple[dict[str, Any], ...] = ()
    accuracy_after: tuple[dict[str, Any], ...] = ()
    accuracy_demoted: tuple[tuple[str, str, str, float], ...] = ()
    accuracy_runs: int = 0
    accuracy_measured_by: str = ""


def _built_with(fingerprint: Mapping[str, Any]) -> str:
    """The library, version and target of a built plan ("TensorRT-RTX 1.7.1 for 8.6, 8.9")."""
    if not fingerprint.get("tensorrt_version"):
        return ""
    name = label(str(fingerprint.get("library", TENSORRT)))
    if fingerprint.get("library") == RTX:
        target = ", ".join(str(fingerprint.get("compute_capability", "")).split(","))
    else:
        target = f"{fingerprint.get('gpu', '?')} ({fingerprint.get('compute_capability', '?')})"
    return f"{name} {fingerprint['tensorrt_version']} for {target}"


def op_table(nodes: Sequence[onnx.NodeProto], outside: Sequence[OutsideNode]) -> tuple[OpSummary, ...]:
    """Aggregate per op type, most frequent first (ties by name)."""
    counts = Counter(n.op_type for n in nodes)
    reasons: dict[str, Counter[str]] = {}
    for node in outside:
        reasons.setdefault(node.op_type, Counter())[node.reason] += 1
    rows = []
    for op, count in sorted(counts.items(), key=lambda item: (-item[1], item[0])):
        why = reasons.get(op, Counter())
        ranked = tuple(sorted(why.items(), key=lambda item: (-item[1], item[0])))
        rows.append(OpSummary(op, count, count - sum(why.values()), ranked))
    return tuple(rows)


def name_order(name: str) -> tuple[Any, ...]:
    """Sort key putting ``tensorrt_engine_2`` before ``tensorrt_engine_10`` (numbers as numbers)."""
    return tuple(int(part) if part.isdigit() else part for part in re.split(r"(\d+)", name))


def engine_summary(record: EngineRecord) -> EngineSummary:
    """Summarize an engine node's record for the report."""

    def tensors(values: Sequence[onnx.ValueInfoProto], ranges: Sequence[Mapping[str, Any]]) -> tuple[dict[str, Any], ...]:
        result = []
        for value in values:
            elem = value.type.tensor_type.elem_type if value.type.HasField("tensor_type") else 0
            dims = value.type.tensor_type.shape.dim if value.type.HasField("tensor_type") else []
            result.append({
                "name": value.name,
                "dtype": dtype_name(elem or None),
                "shape": [d.dim_value if d.HasField("dim_value") else (d.dim_param or "?")
                          for d in dims],
                "profiles": [r.get(value.name) for r in ranges],
            })
        return tuple(result)

    ops = Counter(n.op_type for n in record.subgraph.node)
    checked = record.precision.get("accuracy", {})
    return EngineSummary(
        name=record.name,
        nodes=len(record.subgraph.node),
        op_types=tuple(sorted(ops.items(), key=lambda item: (-item[1], item[0]))),
        inputs=tensors(record.subgraph.input, record.profiles),
        outputs=tensors(record.subgraph.output, record.output_shapes),
        status=record.status,
        status_reason=record.status_reason,
        precision=str(record.build_settings.get("precision_mode", "fp32")),
        fp32_nodes=tuple(tuple(k) for k in record.precision.get("fp32_nodes", ())),  # type: ignore[misc]
        quantization=str(record.precision.get("quantization", "")),
        built_with=_built_with(record.fingerprint) if record.engine_sha256 else "",  # (a plan)
        accuracy_before=tuple(checked.get("before", ())),
        accuracy_after=tuple(checked.get("after", ())),
        accuracy_demoted=tuple(tuple(d) for d in checked.get("demoted", ())),  # type: ignore[misc]
        accuracy_runs=int(checked.get("runs", 0)),
        accuracy_measured_by=str(checked.get("measured_by", "onnxruntime" if checked else "")),
    )


@dataclasses.dataclass(frozen=True)
class Report:
    """What ``convert`` did, as data; ``render()`` makes the text table, ``to_json()`` the JSON.

    Attributes:
        source: The original model's path (or "<ModelProto>").
        nodes: Node count of the original main graph.
        nodes_in_tensorrt: Nodes placed in engines.
        ops: The op table.
        engines: One summary per engine, in graph order.
        outside: Every node left to ONNX Runtime with its reason.
        disagreements: Nodes our rules accept but TensorRT's ONNX parser rejected, with the
            parser's reason (each is a rule to fix in ``hybridtrt.converters``).
    """

    source: str
    nodes: int
    nodes_in_tensorrt: int
    ops: tuple[OpSummary, ...]
    engines: tuple[EngineSummary, ...]
    outside: tuple[OutsideNode, ...]
    disagreements: tuple[OutsideNode, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready data (``from_dict`` reads it back)."""
        return {
            "source": self.source,
            "nodes": self.nodes,
            "nodes_in_tensorrt": self.nodes_in_tensorrt,
            "ops": [{"op_type": o.op_type, "count": o.count, "in_tensorrt": o.in_tensorrt,
                     "reasons": [list(r) for r in o.reasons]} for o in self.ops],
            "engines": [{**vars(e), "op_types": [list(t) for t in e.op_types],
                         "fp32_nodes": [list(k) for k in e.fp32_nodes],
                         "accuracy_before": list(e.accuracy_before),
                         "accuracy_after": list(e.accuracy_after),
                         "accuracy_demoted": [list(d) for d in e.accuracy_demoted],
                         "inputs": list(e.inputs), "outputs": list(e.outputs)}
                        for e in self.engines],
            "outside": [vars(o) for o in self.outside],
            "disagreements": [vars(o) for o in self.disagreements],
        }

    def to_json(self, indent: int | None = 2) -> str:
        return json.dumps(self.to_dict(), indent=indent, sort_keys=True)

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Report:
        return Report(
            source=data["source"],
            nodes=int(data["nodes"]),
            nodes_in_tensorrt=int(data["nodes_in_tensorrt"]),
            ops=tuple(
                OpSummary(o["op_type"], o["count"], o["in_tensorrt"],
                          tuple((r, c) for r, c in o["reasons"]))
                for o in data["ops"]
            ),
            engines=tuple(
                EngineSummary(**{**e, "op_types": tuple(tuple(x) for x in e["op_types"]),
                                 "fp32_nodes": tuple(tuple(k) for k in e.get("fp32_nodes", ())),
                                 "accuracy_before": tuple(e.get("accuracy_before", ())),
                                 "accuracy_after": tuple(e.get("accuracy_after", ())),
                                 "accuracy_demoted": tuple(
                                     tuple(d) for d in e.get("accuracy_demoted", ())),
                                 "inputs": tuple(e["inputs"]), "outputs": tuple(e["outputs"])})
                for e in data["engines"]
            ),
            outside=tuple(OutsideNode(**o) for o in data["outside"]),
            disagreements=tuple(OutsideNode(**o) for o in data.get("disagreements", ())),
        )

    def render(self) -> str:
        """A human-readable report: summary line, op table, engine list."""
        share = 100.0 * self.nodes_in_tensorrt / self.nodes if self.nodes else 0.0
        lines = [
            f"model: {self.source}",
            f"nodes: {self.nodes}, in TensorRT: {self.nodes_in_tensorrt} ({share:.1f}%), "
            f"engines: {len(self.engines)}",
            "",
        ]
        lines += _table(
            ("op type", "count", "in TensorRT", "reason for the rest"),
            [(o.op_type, str(o.count), str(o.in_tensorrt), _reasons(o.reasons)) for o in self.ops],
        )
        for engine in self.engines:
            lines += ["", f"engine {engine.name}: {engine.nodes} nodes, {engine.precision}, "
                      f"{engine.status}" + (f" ({engine.status_reason})" if engine.status_reason else "")
                      + (f" with {engine.built_with}" if engine.built_with else "")]
            for label, tensors in (("in ", engine.inputs), ("out", engine.outputs)):
                for tensor in tensors:
                    shape = _profiles(tensor["profiles"]) or _symbolic(tensor.get("shape"))
                    lines.append(f"  {label} {tensor['name']} {tensor['dtype']} {shape}")
            if engine.quantization:
                lines.append(f"  int8: {engine.quantization}")
            if engine.fp32_nodes:
                lines.append(f"  kept in FP32 ({len(engine.fp32_nodes)}):")
                lines += [f"    {name} ({op}): {why}" for name, op, why in engine.fp32_nodes]
            lines += _accuracy_lines(engine)
        if self.disagreements:
            lines += ["", f"TensorRT's ONNX parser rejected {len(self.disagreements)} node(s) our "
                          "rules accept:"]
            lines += [f"  {d.name} ({d.op_type}): {d.reason}" for d in self.disagreements]
        return "\n".join(lines)

    def __str__(self) -> str:
        return self.render()


def accuracy_line(engine: EngineSummary) -> str:
    """One line on what the accuracy guard did to ``engine`` (empty when it was not checked)."""
    text = _accuracy_text(engine)
    return f"accuracy guard: {engine.name} {text}" if text else ""


def _accuracy_text(engine: EngineSummary) -> str:
    if not engine.accuracy_after:
        return ""
    worst = [max(errors, key=lambda e: e["rel_l2"] / e["tolerance"])
             for errors in (engine.accuracy_before, engine.accuracy_after)]
    by = {"tensorrt": "TensorRT", "onnxruntime": "ONNX Runtime"}.get(
        engine.accuracy_measured_by, engine.accuracy_measured_by)
    change = (f"output '{worst[0]['output']}' relative L2 {worst[0]['rel_l2']:.3g} -> "
              f"{worst[1]['rel_l2']:.3g} (tolerance {worst[1]['tolerance']:g}), "
              f"{engine.accuracy_runs} runs" + (f" through {by}" if by else ""))
    if not engine.accuracy_demoted:
        return f"within tolerance: {change}"
    names = ", ".join(d[0] for d in engine.accuracy_demoted)
    return (f"keeps {len(engine.accuracy_demoted)} more node(s) in FP32 ({names}): {change}")


def _accuracy_lines(engine: EngineSummary) -> list[str]:
    text = _accuracy_text(engine)
    if not text:
        return []
    return [f"  accuracy guard: {text}"] + [
        f"    {name} ({op}): moved '{output}' by {error:.3g}"
        for name, op, output, error in engine.accuracy_demoted]


def _reasons(reasons: Sequence[tuple[str, int]]) -> str:
    return "; ".join(f"{r} (x{c})" if c > 1 else r for r, c in reasons) or "-"


def _symbolic(dims: Sequence[int | str] | None) -> str:
    """Dims without profiles, as the model declares them (``Nx4``; ``?`` when unknown)."""
    return "x".join(map(str, dims)) if dims else "?"


def _profiles(ranges: Sequence[Mapping[str, list[int]] | None]) -> str:
    parts = []
    for r in ranges:
        if not r:
            parts.append("?")
        elif r["min"] == r["max"]:
            parts.append("x".join(map(str, r["opt"])) or "scalar")
        else:
            parts.append(" / ".join("x".join(map(str, r[k])) for k in ("min", "opt", "max")))
    return " | ".join(parts)


def _table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> list[str]:
    widths = [max(len(header[i]), *(len(r[i]) for r in rows)) if rows else len(header[i])
              for i in range(len(header) - 1)]
    def line(cells: Sequence[str]) -> str:
        return "  ".join(c.ljust(w) for c, w in zip(cells, widths)) + "  " + cells[-1]
    return [line(header), line(["-" * w for w in widths] + ["-" * len(header[-1])])] + [
        line(r) for r in rows
    ]
