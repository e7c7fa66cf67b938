"""TensorRT-RTX's own builder call: the compute capabilities an ahead-of-time build targets."""

from __future__ import annotations

from collections.abc import Sequence

import tensorrt_rtx as trt

from hybridtrt.trt.api import TensorRTFailure

__all__ = ["set_targets"]

_CAPABILITIES = {
    "7.5": trt.ComputeCapability.SM75, "8.0": trt.ComputeCapability.SM80,
    "8.6": trt.ComputeCapability.SM86, "8.9": trt.ComputeCapability.SM89,
    "12.0": trt.ComputeCapability.SM120, "12.1": trt.ComputeCapability.SM121,
}


def set_targets(config: trt.IBuilderConfig, targets: Sequence[str]) -> None:
    """Build for ``targets`` (empty: the GPU that builds, TensorRT-RTX's own default)."""
    if not targets:
        return
    config.num_compute_capabilities = len(targets)
    for index, target in enumerate(targets):
        if target not in _CAPABILITIES:
            raise TensorRTFailure(f"TensorRT-RTX cannot build for compute capability {target}")
        if not config.set_compute_capability(_CAPABILITIES[target], index):
            raise TensorRTFailure(f"TensorRT-RTX refused compute capability {target}")
