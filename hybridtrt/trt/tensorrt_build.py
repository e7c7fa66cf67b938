"""TensorRT build calls: the parser's support answer and strongly typed engine builds.

Under TensorRT-RTX (``hybridtrt.trt.library``) the same calls build ahead of time for the
spec's compute capabilities; RTX has no timing cache, hardware compatibility levels or
optimization levels, and every network is strongly typed.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, SupportsInt

from hybridtrt.trt import library
from hybridtrt.trt.api import BuildOutput, BuildSpec, ParserVerdict, TensorRTFailure
from hybridtrt.trt.profiles import profile_settings
from hybridtrt.trt.tensorrt_logger import LOGGER, capture_errors, dims, parser_logger

if TYPE_CHECKING:
    import tensorrt as trt
else:
    trt = library.bound()

__all__ = ["build", "parse_support"]

_HARDWARE = {
    "ampere_plus": trt.HardwareCompatibilityLevel.AMPERE_PLUS,
    "same_compute_capability": trt.HardwareCompatibilityLevel.SAME_COMPUTE_CAPABILITY,
}


def _rtx() -> bool:
    return library.bound_name() == library.RTX


def _network(builder: trt.Builder) -> trt.INetworkDefinition:
    # Strongly typed: precision comes from the ONNX graph (TensorRT 11 and TensorRT-RTX know no
    # other mode and ignore the flag, which RTX deprecates; 10.x needs it).
    flags = 0 if _rtx() else 1 << int(trt.NetworkDefinitionCreationFlag.STRONGLY_TYPED)
    network = builder.create_network(flags)
    if network is None:
        raise TensorRTFailure("TensorRT could not create a network definition")
    return network


def _parser_errors(parser: trt.OnnxParser, logged: list[str]) -> TensorRTFailure:
    messages, node = [], None
    for k in range(parser.num_errors):
        error = parser.get_error(k)
        where = f"node {error.node()} ({error.node_name()})" if error.node() >= 0 else "model"
        messages.append(f"{where}: {error.desc()}")
        if node is None and error.node() >= 0:
            node = int(error.node())
    text = "; ".join(messages or logged) or "TensorRT's ONNX parser failed without a message"
    return TensorRTFailure(text, node)


def parse_support(model: bytes, path: str | None = None) -> ParserVerdict:
    """Which of the subgraph's nodes TensorRT's ONNX parser supports, with its reasons
    (``path``: a file in the folder the model's external data is read from)."""
    with capture_errors():
        builder = trt.Builder(LOGGER)
        network = _network(builder)  # the parser keeps no reference: it must outlive the parser
        parser = trt.OnnxParser(network, parser_logger())
        if path is None:
            parser.supports_model_v2(model)
        else:
            parser.supports_model_v2(model, path)
        supported: set[int] = set()
        for k in range(parser.num_subgraphs):
            if parser.is_subgraph_supported(k):
                supported.update(int(n) for n in parser.get_subgraph_nodes(k))
        reasons: dict[int, str] = {}
        for k in range(parser.num_errors):
            error = parser.get_error(k)
            if error.node() >= 0:
                reasons.setdefault(int(error.node()), error.desc())
    return ParserVerdict(frozenset(supported), reasons)


class _Progress(trt.IProgressMonitor):
    """Reports the top-level build phases to ``progress``."""

    def __init__(self, progress: Callable[[str], None]) -> None:
        trt.IProgressMonitor.__init__(self)
        self._progress = progress

    def phase_start(self, phase_name: str, parent_phase: str, num_steps: SupportsInt) -> None:
        if not parent_phase:
            self._progress(f"{phase_name} ({int(num_steps)} steps)")

    def step_complete(self, phase_name: str, step: SupportsInt) -> bool:
        return True  # never cancel

    def phase_finish(self, phase_name: str) -> None:
        return None


def _configure(builder: trt.Builder, network: trt.INetworkDefinition, spec: BuildSpec,
               progress: Callable[[str], None]) -> tuple[trt.IBuilderConfig, _Progress]:
    config = builder.create_builder_config()
    config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, spec.workspace_size)
    if spec.strip_weights:
        config.set_flag(trt.BuilderFlag.STRIP_PLAN)
        config.set_flag(trt.BuilderFlag.REFIT_IDENTICAL)
    if _rtx():
        from hybridtrt.trt.tensorrt_rtx_targets import set_targets

        set_targets(config, spec.compute_capabilities)
    else:
        config.builder_optimization_level = spec.optimization_level
        if spec.hardware_compatibility in _HARDWARE:
            config.hardware_compatibility_level = _HARDWARE[spec.hardware_compatibility]
        cache = config.create_timing_cache(spec.timing_cache)
        if not config.set_timing_cache(cache, False):
            raise TensorRTFailure("TensorRT refused the timing cache")
    shapes = {network.get_input(k).name: dims(network.get_input(k).shape)
              for k in range(network.num_inputs)}
    for number, profile in enumerate(spec.profiles):
        optimization = builder.create_optimization_profile()
        for name, lo, opt, hi in profile_settings(shapes, profile):
            optimization.set_shape(name, lo, opt, hi)
        if config.add_optimization_profile(optimization) < 0:
            raise TensorRTFailure(f"TensorRT refused optimization profile {number}")
    monitor = _Progress(progress)
    config.progress_monitor = monitor
    return config, monitor


def build(model: bytes, spec: BuildSpec, progress: Callable[[str], None],
          path: str | None = None) -> BuildOutput:
    """Parse ``model`` (its external data read next to ``path``) and build a serialized plan
    (``TensorRTFailure`` on any refusal)."""
    with capture_errors() as logged:
        builder = trt.Builder(LOGGER)
        network = _network(builder)
        parser = trt.OnnxParser(network, LOGGER)
        if not (parser.parse(model) if path is None else parser.parse(model, path)):
            raise _parser_errors(parser, logged)
        shape_inputs = [network.get_input(k).name for k in range(network.num_inputs)
                        if network.get_input(k).is_shape_tensor]
        if shape_inputs:
            raise TensorRTFailure(f"input(s) {shape_inputs} are shape tensors, whose values "
                                  "hybridtrt does not record")
        config, _monitor = _configure(builder, network, spec, progress)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise TensorRTFailure("; ".join(logged) or "TensorRT could not build the engine")
        if _rtx():
            return BuildOutput(bytes(memoryview(plan)), b"")
        timing = config.get_timing_cache().serialize()
        return BuildOutput(bytes(memoryview(plan)), bytes(memoryview(timing)))
