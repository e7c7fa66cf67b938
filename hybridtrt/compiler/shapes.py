"""Stage 4: give every engine input a min/opt/max shape per optimization profile.

Inputs are matched against ``Input`` sets; shapes that ONNX shape inference already fixes need
no run. Otherwise the original model runs in ONNX Runtime on the min / opt / max inputs (or the
warm-up samples), and the shape of every cluster-boundary tensor is recorded, as Paddle's
PIR-TRT does with its warm-up runs.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Collection, Iterable, Mapping, Sequence

import numpy as np
import onnx
from onnx import TensorProto

from hybridtrt.core.graph import GraphIndex
from hybridtrt.compiler.precision.guards import TensorStats
from hybridtrt.config import Input
from hybridtrt.converters.registry import TensorInfo, dtype_name
from hybridtrt.errors import InputError, UnsupportedModelError
from hybridtrt.core.external import is_large
from hybridtrt.ort_support import first_line as _first_line
from hybridtrt.ort_support import ort_session
from hybridtrt.progress import progress

__all__ = ["RunPlan", "ShapeRange", "inputs_reaching", "match_inputs", "plan_runs", "random_value",
           "record_shapes", "record_stats", "recording_session", "static_shape", "tensor_values"]

_LOG = logging.getLogger("hybridtrt")
Shape = tuple[int, ...]


@dataclasses.dataclass(frozen=True)
class ShapeRange:
    """min/opt/max of one tensor in one optimization profile."""

    min: Shape
    opt: Shape
    max: Shape

    def to_json(self) -> dict[str, list[int]]:
        return {"min": list(self.min), "opt": list(self.opt), "max": list(self.max)}

    @staticmethod
    def from_json(data: Mapping[str, Sequence[int]]) -> ShapeRange:
        return ShapeRange(tuple(data["min"]), tuple(data["opt"]), tuple(data["max"]))


@dataclasses.dataclass(frozen=True)
class RunPlan:
    """The warm-up runs of one profile: each run feeds every model input.

    Attributes:
        feeds: One ``{input name: array}`` per run.
        opt_run: Index of the run whose shapes are the profile's ``opt``.
    """

    feeds: tuple[dict[str, np.ndarray], ...]
    opt_run: int


def static_shape(info: TensorInfo) -> Shape | None:
    """The shape when every dim is a known number, else None."""
    if info.shape is None or any(not isinstance(d, int) for d in info.shape):
        return None
    return tuple(int(d) for d in info.shape)  # type: ignore[arg-type]


def inputs_reaching(index: GraphIndex, nodes: Iterable[int]) -> frozenset[str]:
    """The model inputs that ``nodes`` read, directly or through other nodes."""
    return frozenset(n for n in _needed(index, [t for k in nodes for t in index.node_inputs[k]])[1]
                     if n in index.graph_inputs)


def _needed(index: GraphIndex, names: Iterable[str]) -> tuple[set[int], set[str]]:
    """(nodes, tensors) that computing ``names`` takes, ``names`` included."""
    nodes: set[int] = set()
    tensors: set[str] = set()
    stack = list(names)
    while stack:
        name = stack.pop()
        if name in tensors:
            continue
        tensors.add(name)
        producer = index.producer.get(name)
        if producer is not None and producer not in nodes:
            nodes.add(producer)
            stack.extend(index.node_inputs[producer])
    return nodes, tensors


def plan_runs(index: GraphIndex, inputs: Sequence[Input], seed: int = 0,
              needed: Collection[str] | None = None) -> list[RunPlan]:
    """Match ``Input`` sets to the model inputs and make the feeds of every warm-up run.

    Args:
        index: The model.
        inputs: The Input sets.
        seed: Seed of the random values of inputs without warm-up data.
        needed: The model inputs that engines depend on (``inputs_reaching``); the others need
            no Input and get no feed unless an Input names them. None means every input.

    Raises:
        InputError: An Input names no model input, disagrees with the model's rank, dims or
            dtype, needed dynamic inputs are left without an Input, or profile counts do not
            line up.
    """
    per_name = match_inputs(index, inputs)
    wanted = index.graph_inputs if needed is None else [n for n in index.graph_inputs
                                                        if n in needed or n in per_name]
    _check_missing(index, per_name, wanted)
    counts = {len(v) for v in per_name.values()} - {1}
    if len(counts) > 1:
        raise InputError(
            "every input needs the same number of Input sets (one per optimization profile) or "
            f"exactly one; got {_counts(per_name)}"
        )
    profiles = counts.pop() if counts else 1
    rng = np.random.default_rng(seed)
    plans = []
    for p in range(profiles):
        chosen = {name: sets[p if len(sets) > 1 else 0] for name, sets in per_name.items()}
        plans.append(_plan(index, chosen, rng, wanted))
    return plans


def _counts(per_name: Mapping[str, Sequence[Input]]) -> str:
    return ", ".join(f"'{n}': {len(v)}" for n, v in per_name.items())


def match_inputs(index: GraphIndex, inputs: Sequence[Input]) -> dict[str, list[Input]]:
    """Model input name -> its Input sets (one per profile), checked against the model.

    Raises:
        InputError: An Input names no model input or disagrees with its rank, dims or dtype.
    """
    names = index.graph_inputs
    per_name: dict[str, list[Input]] = {}
    if inputs and inputs[0].name is None:
        if not names or len(inputs) % len(names):
            raise InputError(
                f"{len(inputs)} unnamed Inputs cannot be matched by position to the model's "
                f"{len(names)} inputs {names}; name them or give a multiple of {len(names)}"
            )
        for position, item in enumerate(inputs):
            per_name.setdefault(names[position % len(names)], []).append(item)
    else:
        for item in inputs:
            if item.name not in names:
                raise InputError(
                    f"Input name '{item.name}' is not a model input; the model's inputs are "
                    f"{names}"
                )
            per_name.setdefault(str(item.name), []).append(item)
    for name, sets in per_name.items():
        for item in sets:
            _check_against_model(name, item, index.info(name))
    return per_name


def _check_against_model(name: str, item: Input, info: TensorInfo) -> None:
    lo, opt, hi = item.shapes()
    if info.shape is not None and len(info.shape) != len(lo):
        raise InputError(
            f"Input '{name}' has rank {len(lo)} but the model input has rank {len(info.shape)} "
            f"(shape {_show(info.shape)})"
        )
    for axis, dim in enumerate(info.shape or ()):
        if isinstance(dim, int) and not lo[axis] == hi[axis] == dim:
            raise InputError(
                f"Input '{name}' dimension {axis} ranges {lo[axis]}..{hi[axis]} but the model "
                f"fixes it to {dim} (shape {_show(info.shape)})"
            )
    wanted = item.input_data_type or (item.samples[0].dtype if item.samples else None)
    if wanted is not None and info.dtype is not None:
        model_dtype = onnx.helper.tensor_dtype_to_np_dtype(info.dtype)
        if np.dtype(wanted) != model_dtype:
            raise InputError(
                f"Input '{name}' has dtype {np.dtype(wanted)} but the model input is "
                f"{dtype_name(info.dtype)}"
            )


def _show(shape: Iterable[int | str | None] | None) -> str:
    if shape is None:
        return "unknown"
    return "[" + ", ".join("?" if d is None else str(d) for d in shape) + "]"


def _check_missing(index: GraphIndex, per_name: Mapping[str, Sequence[Input]],
                   names: Sequence[str]) -> None:
    missing = []
    for name in names:
        info = index.info(name)
        if name not in per_name and index.is_tensor_input(name) and static_shape(info) is None:
            missing.append(f"'{name}' {_show(info.shape)}")
    if missing:
        raise InputError(
            "these model inputs have dynamic shapes and need an Input(name=..., "
            "min_input_shape=..., optim_input_shape=..., max_input_shape=...) or "
            f"Input(warmup_data=...): {', '.join(missing)}"
        )


def _plan(index: GraphIndex, chosen: Mapping[str, Input], rng: np.random.Generator,
          names: Sequence[str]) -> RunPlan:
    sample_counts = {len(i.samples) for i in chosen.values() if i.samples}
    ranged = [i for i in chosen.values() if not i.samples]
    if len(sample_counts) > 1 or (sample_counts and ranged and sample_counts != {3}):
        raise InputError(
            "warm-up data must give the same number of samples for every input, and exactly 3 "
            "(min, opt, max) when mixed with shape ranges"
        )
    runs = sample_counts.pop() if sample_counts else 3
    feeds: list[dict[str, np.ndarray]] = [{} for _ in range(runs)]
    for name in names:
        item = chosen.get(name)
        info = index.info(name)
        if item is None and not index.is_tensor_input(name):
            continue  # sequences and optionals never cross into an engine; ORT names them if needed
        for r in range(runs):
            if item is not None and item.samples:
                feeds[r][name] = item.samples[r]
            else:
                shape = _run_shape(item, info, r, runs)
                feeds[r][name] = _random(shape, _dtype(item, info, name), item, rng)
    return RunPlan(tuple(feeds), opt_run=1 if runs == 3 else runs // 2)


def _run_shape(item: Input | None, info: TensorInfo, run: int, runs: int) -> Shape:
    if item is None:
        shape = static_shape(info)
        if shape is None:
            raise UnsupportedModelError(f"input '{info.name}' has no static shape")
        return shape
    return item.shapes()[min(run, 2) if runs == 3 else 1]


def _dtype(item: Input | None, info: TensorInfo, name: str) -> np.dtype:
    if item is not None and item.input_data_type is not None:
        return np.dtype(item.input_data_type)
    if info.dtype is None:
        raise InputError(f"the dtype of model input '{name}' is unknown; set input_data_type")
    return np.dtype(onnx.helper.tensor_dtype_to_np_dtype(info.dtype))


def _random(shape: Shape, dtype: np.dtype, item: Input | None, rng: np.random.Generator) -> np.ndarray:
    return random_value(shape, dtype, rng, item.input_range if item else None)


def random_value(shape: Sequence[int], dtype: np.dtype, rng: np.random.Generator,
                 value_range: Sequence[float] | None = None) -> np.ndarray:
    """A random input: booleans 0/1, integers and floats within ``value_range`` (default
    [0, 1], both ends included for integers)."""
    if dtype == np.bool_:
        return rng.integers(0, 2, size=shape).astype(np.bool_)
    if np.issubdtype(dtype, np.integer):
        low, high = value_range if value_range else (0, 1)
        return rng.integers(int(low), int(high), size=shape, endpoint=True).astype(dtype)
    low, high = value_range if value_range else (0.0, 1.0)
    return rng.uniform(low, high, size=shape).astype(dtype)


def record_shapes(
    index: GraphIndex, tensors: Sequence[str], plans: Sequence[RunPlan]
) -> list[dict[str, ShapeRange]]:
    """Shape ranges of ``tensors`` for every profile.

    Tensors whose shape inference gives every dim are static and need no run; ONNX Runtime runs
    the model only when some tensor is left unknown.

    Raises:
        InputError: ONNX Runtime fails on the warm-up inputs (the message names the run).
    """
    known = {name: static_shape(index.info(name)) for name in tensors}
    unknown = [name for name, shape in known.items() if shape is None]
    observed: list[dict[str, list[Shape]]] = [{} for _ in plans]
    if unknown:
        _LOG.info("recording shapes of %d boundary tensors with ONNX Runtime (%d profile(s))",
                  len(unknown), len(plans))
        session = recording_session(index, unknown)
        runs = [(p, r, feed) for p, plan in enumerate(plans) for r, feed in enumerate(plan.feeds)]
        for p, r, feed in progress(runs, desc="shape ranges", unit="run"):
            for name, value in zip(unknown, _run(session, unknown, feed, r)):
                observed[p].setdefault(name, []).append(tuple(int(d) for d in value.shape))
    ranges: list[dict[str, ShapeRange]] = []
    for plan, seen in zip(plans, observed):
        profile = {}
        for name in tensors:
            static = known[name]
            if static is not None:
                profile[name] = ShapeRange(static, static, static)
            else:
                profile[name] = _reduce(name, seen[name], plan.opt_run)
        ranges.append(profile)
    return ranges


def record_stats(
    index: GraphIndex, tensors: Sequence[str], plans: Sequence[RunPlan]
) -> dict[str, TensorStats]:
    """Largest magnitude and largest shape of each float tensor over every warm-up run.

    Raises:
        InputError: ONNX Runtime fails on the warm-up inputs (the message names the run).
    """
    names = [n for n in tensors if index.info(n).dtype == onnx.TensorProto.FLOAT
             and (n in index.producer or n in index.graph_inputs)]
    computed = [n for n in names if n in index.producer]
    if not names or not plans:
        return {}
    _LOG.info("recording value ranges of %d tensors with ONNX Runtime (%d profile(s))",
              len(names), len(plans))
    session = recording_session(index, computed) if computed else None
    peaks: dict[str, float] = {}
    shapes: dict[str, list[int]] = {}
    runs = [(r, feed) for plan in plans for r, feed in enumerate(plan.feeds)]
    for r, feed in progress(runs, desc="value ranges", unit="run"):
        values = _run(session, computed, feed, r) if session is not None else []
        seen = [*zip(computed, values), *((n, feed[n]) for n in names if n in feed)]
        for name, value in seen:
            value = np.asarray(value)
            peak = float(np.nanmax(np.abs(value))) if value.size else 0.0
            peaks[name] = max(peaks.get(name, 0.0), peak)
            known = shapes.setdefault(name, list(value.shape))
            shapes[name] = [max(a, int(b)) for a, b in zip(known, value.shape)]
    return {n: TensorStats(peaks[n], tuple(shapes[n])) for n in names}


def tensor_values(index: GraphIndex, names: Sequence[str],
                  feeds: Sequence[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
    """The values of ``names`` (model inputs or computed tensors) for each feed of the model."""
    computed = [n for n in names if n not in index.graph_inputs]
    session = recording_session(index, computed) if computed else None
    found = []
    for r, feed in enumerate(feeds):
        values = dict(zip(computed, _run(session, computed, feed, r))) if session is not None else {}
        found.append({n: np.asarray(values[n] if n in values else feed[n]) for n in names})
    return found


def _reduce(name: str, shapes: Sequence[Shape], opt_run: int) -> ShapeRange:
    if len({len(s) for s in shapes}) != 1:
        raise UnsupportedModelError(
            f"tensor '{name}' changes rank between warm-up runs ({[list(s) for s in shapes]}); "
            "TensorRT profiles need a fixed rank"
        )
    lo = tuple(min(d) for d in zip(*shapes))
    hi = tuple(max(d) for d in zip(*shapes))
    return ShapeRange(lo, shapes[opt_run], hi)


def _recording_outputs(index: GraphIndex, names: Sequence[str]) -> list[onnx.ValueInfoProto]:
    """The outputs a recording model adds to the model's own to give ``names``."""
    outputs = {o.name for o in index.model.graph.output}
    return [onnx.helper.make_tensor_value_info(name, index.info(name).dtype or 0, None)
            for name in dict.fromkeys(names) if name not in outputs]


def _recording_model(index: GraphIndex, names: Sequence[str]) -> onnx.ModelProto:
    """A copy of the model that outputs ``names`` and keeps only the nodes they take.

    Nodes the names do not depend on never run, so they cannot fail on random warm-up values,
    and model inputs they do not depend on need no feed.
    """
    nodes, tensors = _needed(index, names)
    model = onnx.ModelProto()
    model.CopyFrom(index.model)
    graph = model.graph
    kept = [node for k, node in enumerate(graph.node) if k in nodes]
    del graph.node[:]
    graph.node.extend(kept)
    inputs = [v for v in graph.input if v.name in tensors or v.name in index.initializers]
    del graph.input[:]
    graph.input.extend(inputs)
    outputs = {o.name: o for o in graph.output}
    del graph.output[:]
    for name in dict.fromkeys(names):
        if name in outputs:
            graph.output.append(outputs[name])
        else:
            info = index.info(name)
            graph.output.append(onnx.helper.make_tensor_value_info(name, info.dtype or 0, None))
    return model


def recording_session(index: GraphIndex, names: Sequence[str]) -> object:
    """An ONNX Runtime session over the recording model, or onnx's reference evaluator when ORT
    cannot load it (for example an opset newer than the installed ORT knows). A model over
    2 GiB reaches ORT through a file with external data, never copied whole in memory."""
    try:
        import onnxruntime as ort
    except ImportError as exc:
        raise UnsupportedModelError(
            "recording shape ranges needs ONNX Runtime: pip install 'hybridtrt[cpu]' "
            "(or onnxruntime-gpu)"
        ) from exc
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_BASIC
    options.log_severity_level = 3
    if any(v.type.tensor_type.elem_type == TensorProto.BFLOAT16 for v in index.model.graph.input):
        reason = "its Python API takes no bfloat16 inputs"
    else:
        try:
            if is_large(index.model):  # (no pruned copy of a model this large)
                return ort_session(index.model, options, ["CPUExecutionProvider"],
                                   outputs=_recording_outputs(index, names))
            return ort_session(_recording_model(index, names), options, ["CPUExecutionProvider"])
        except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
            reason = _first_line(exc)
    _LOG.warning("ONNX Runtime cannot load the model (%s); recording shapes with onnx's "
                 "reference evaluator instead (slower)", reason)
    try:
        from onnx.reference import ReferenceEvaluator

        return ReferenceEvaluator(_recording_model(index, names))
    except Exception as exc:  # noqa: BLE001 - the evaluator raises many error types
        raise UnsupportedModelError(
            f"neither ONNX Runtime ({reason}) nor onnx's reference evaluator "
            f"({_first_line(exc)}) can run the model to record shapes"
        ) from exc


def _input_names(session: object) -> frozenset[str]:
    """The inputs an ONNX Runtime session or a reference evaluator takes."""
    if hasattr(session, "get_inputs"):
        return frozenset(i.name for i in session.get_inputs())
    return frozenset(getattr(session, "input_names", ()))


def _run(session: object, names: Sequence[str], feed: Mapping[str, np.ndarray], run: int) -> list:
    wanted = _input_names(session)
    try:
        return list(session.run(list(names), {k: v for k, v in feed.items() if k in wanted}))  # type: ignore[attr-defined]
    except Exception as exc:  # noqa: BLE001 - ORT raises its own untyped errors
        shapes = ", ".join(f"{k}: {list(v.shape)}" for k, v in feed.items())
        raise InputError(
            f"ONNX Runtime failed on warm-up run {run} with inputs {shapes}: {_first_line(exc)}"
        ) from exc


