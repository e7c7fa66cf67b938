"""The pipeline as one list of steps over a run's context; ``convert`` runs them all and
``analyze`` stops after the analysis steps."""

from __future__ import annotations

import dataclasses
import logging
import os
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import onnx

from hybridtrt.compiler.building.engines import Engines, ShapeBook, build_engines, outside_node
from hybridtrt.compiler.capability import CapabilityReport
from hybridtrt.compiler.clustering import Clustering, graph_index, judge, partition, rules_for
from hybridtrt.compiler.precision.calibration import NEEDS_DATA
from hybridtrt.compiler.precision.stage import PrecisionStage, carries_qdq, prepare_model
from hybridtrt.compiler.shape_info import ShapeRangeInfo, read_shape_range_info
from hybridtrt.compiler.shapes import inputs_reaching, plan_runs, static_shape
from hybridtrt.config import PrecisionMode, TensorRTConfig
from hybridtrt.converters.registry import Registry
from hybridtrt.core.format import FORMAT_VERSION, META_FORMAT, META_REPORT, META_VERSION, EngineRecord
from hybridtrt.core.graph import GraphIndex
from hybridtrt.core.hybrid import HybridModel
from hybridtrt.core.loading import LoadedModel, load_model
from hybridtrt.core.partition import check_acyclic
from hybridtrt.core.report import OutsideNode, Report, engine_summary, op_table
from hybridtrt.core.rewrite import rewrite
from hybridtrt.errors import ConfigError
from hybridtrt.trt.builder import default_builder
from hybridtrt.trt.engine import EngineBuilder, NotBuilding
from hybridtrt.version import __version__

__all__ = ["ANALYSIS", "STEPS", "Run", "Step", "run_steps"]

_LOG = logging.getLogger("hybridtrt")


@dataclasses.dataclass
class Run:
    """One ``convert`` or ``analyze`` call: its arguments, what each step made, its timings.

    Attributes:
        source: The model as given (path or ModelProto).
        config: The settings.
        building: Engines are built and the hybrid model made (``convert``), or not (``analyze``).
        builder: The engine builder ``convert`` was given (None: the default one).
        spill: A folder where large built plans wait for ``rewrite`` (None: in memory).
        seconds: How long each step took, in the order the steps ran.
    """

    source: onnx.ModelProto | str | os.PathLike[str]
    config: TensorRTConfig
    building: bool
    builder: EngineBuilder | None = None
    spill: Path | None = None
    seconds: dict[str, float] = dataclasses.field(default_factory=dict)
    loaded: LoadedModel = dataclasses.field(init=False)
    index: GraphIndex = dataclasses.field(init=False)
    rules: Registry = dataclasses.field(init=False)
    capability: CapabilityReport = dataclasses.field(init=False)
    clustering: Clustering = dataclasses.field(init=False)
    book: ShapeBook = dataclasses.field(init=False)
    precision: PrecisionStage | None = None
    recorded: ShapeRangeInfo | None = None  # config.shape_range_info, read
    engines: Engines = dataclasses.field(init=False)
    report: Report = dataclasses.field(init=False)
    hybrid: HybridModel = dataclasses.field(init=False)


def _always(run: Run) -> bool:
    return True


@dataclasses.dataclass(frozen=True)
class Step:
    """One pipeline step: its name (in logs and timings) and what it does to the run."""

    name: str
    apply: Callable[[Run], None]
    applies: Callable[[Run], bool] = _always


def run_steps(run: Run, steps: Sequence[Step]) -> None:
    """Run ``steps`` in order, logging each and keeping its duration in ``run.seconds``."""
    for step in steps:
        if not step.applies(run):
            continue
        _LOG.info("%s ...", step.name)
        run.seconds[step.name] = 0.0  # the step's place in the order it ran
        start = time.perf_counter()
        step.apply(run)
        elapsed = time.perf_counter() - start
        run.seconds[step.name] = elapsed
        _LOG.info("%s done in %.2f s", step.name, elapsed)


def _load(run: Run) -> None:
    original = load_model(run.source)
    if run.config.shape_range_info is not None:  # checked against the model as given
        run.recorded = read_shape_range_info(Path(run.config.shape_range_info), original.model)
    run.loaded = prepare_model(original, run.config)
    if run.building:
        _check_int8_source(run.loaded, run.config)


def _check_int8_source(loaded: LoadedModel, config: TensorRTConfig) -> None:
    """Fail fast when INT8 has nothing to take its scales from."""
    cache = config.calibration_cache
    if (config.precision_mode is PrecisionMode.INT8 and config.calibration_data is None
            and not carries_qdq(loaded.model) and (cache is None or not Path(cache).is_file())):
        raise ConfigError(NEEDS_DATA)


def _capability(run: Run) -> None:
    run.index = graph_index(run.loaded)
    run.rules = rules_for(run.config)
    run.capability = judge(run.index, run.config, run.rules)


def _partition(run: Run) -> None:
    ranged = frozenset(run.recorded.tensors) if run.recorded is not None else frozenset()
    run.clustering = partition(run.index, run.capability, run.config, run.rules, ranged)


def _shape_ranges(run: Run) -> None:
    """Record the boundary tensors' ranges; ``analyze`` records them only when the inputs'
    ranges are given or the model is static."""
    index, recorded = run.index, run.recorded
    inputs = recorded.profile_inputs() if recorded is not None else run.config.inputs
    needed = inputs_reaching(index, (n for p in run.clustering.parts for n in p.nodes))
    dynamic = [n for n in index.graph_inputs if n in needed and index.is_tensor_input(n)
               and static_shape(index.info(n)) is None]
    wanted = run.building or inputs or not dynamic
    run.book = ShapeBook(index, plan_runs(index, inputs, needed=needed) if wanted else [],
                         recorded.tensors if recorded is not None else {})
    run.book.need(run.clustering.parts)


def _precision(run: Run) -> None:
    """Prepare the clusters' precision (``analyze``: only the 16-bit modes, which need no data)."""
    if run.building or run.config.precision_mode in (PrecisionMode.FP16, PrecisionMode.BF16):
        run.precision = PrecisionStage(run.index, run.book.plans, run.config)
        run.precision.prepare(run.clustering.parts)


def _engines(run: Run) -> None:
    config = run.config
    builder = run.builder
    if builder is None:
        builder = (default_builder(config.cache_dir, config.device_id, None, config.backend,
                                   config.target_compute_capabilities) if run.building
                   else NotBuilding("inspection only: nothing is built"))
    run.engines = build_engines(run.index, run.clustering.parts, run.book, config, builder,
                                run.precision, run.clustering.facts, run.spill)
    if run.precision is not None and run.precision.guard_seconds:
        run.seconds["accuracy guard"] = run.precision.guard_seconds  # within "engines"


def _report(run: Run) -> None:
    """The clusters after TensorRT's refinements, and the report of them."""
    run.clustering = _refined(run.clustering, run.engines)
    run.report = report_of(run.loaded, run.clustering, run.engines.records,
                           run.engines.disagreements)


def _refined(clustering: Clustering, engines: Engines) -> Clustering:
    """The clustering after the engine stage: its final parts, and the refused nodes outside."""
    if not engines.rejected:
        return dataclasses.replace(clustering, parts=engines.parts)
    refused = {r.node: r for r in engines.rejected}
    outside = list(clustering.outside) + [outside_node(clustering.index, r)
                                          for r in refused.values()]
    position = {v.name: k for k, v in enumerate(clustering.capability.verdicts)}
    outside.sort(key=lambda o: position.get(o.name, len(position)))
    return dataclasses.replace(clustering, parts=engines.parts, outside=tuple(outside))


def report_of(loaded: LoadedModel, clustering: Clustering, records: Sequence[EngineRecord],
              disagreements: Sequence[OutsideNode]) -> Report:
    """The partition report of a clustering and its engines."""
    source = Path(loaded.source).name if loaded.source != "<ModelProto>" else loaded.source
    return Report(
        source=source,
        nodes=len(clustering.index.nodes),
        nodes_in_tensorrt=sum(len(p) for p in clustering.parts),
        ops=op_table(clustering.index.nodes, clustering.outside),
        engines=tuple(engine_summary(r) for r in records),
        outside=clustering.outside,
        disagreements=tuple(disagreements),
    )


def _rewrite(run: Run) -> None:
    parts, engines = run.clustering.parts, run.engines
    check_acyclic(run.index.deps, parts, "rewrite")
    proto = rewrite(run.index, parts, engines.ios, engines.records, {
        META_FORMAT: str(FORMAT_VERSION),
        META_VERSION: __version__,
        META_REPORT: run.report.to_json(indent=None),
    })
    # Each plan is now held by its engine node alone (the stage's records and the hybrid
    # model's read it there); the stage's records and their subgraphs go.
    run.engines = dataclasses.replace(engines, records=())
    del engines
    run.hybrid = HybridModel(proto)


def _save(run: Run) -> None:
    directory = run.config.save_model_dir
    if directory is not None:  # always, since the step applies only then
        _LOG.info("saved %s", run.hybrid.save(Path(directory)))


STEPS: tuple[Step, ...] = (
    Step("load", _load),
    Step("capability", _capability),
    Step("partition", _partition),
    Step("shape ranges", _shape_ranges),
    Step("precision", _precision),
    Step("engines", _engines),
    Step("report", _report),
    Step("rewrite", _rewrite),
    Step("save", _save, lambda run: run.config.save_model_dir is not None),
)
"""Every step of ``convert``, in order."""

ANALYSIS: tuple[Step, ...] = STEPS[:[s.name for s in STEPS].index("report") + 1]
"""The steps ``analyze`` runs: ``convert``'s, up to the report."""
