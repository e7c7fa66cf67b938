"""What a plan is tied to (TensorRT version, GPU, settings) and whether it runs here."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from hybridtrt.trt import rtx
from hybridtrt.trt.api import GpuInfo
from hybridtrt.trt.library import RTX, TENSORRT, label

__all__ = ["incompatibility", "plan_fingerprint"]


def plan_fingerprint(tensorrt_version: str, gpu: GpuInfo, hardware_compatibility: str,
                     library: str = TENSORRT, stripped: bool = False) -> dict[str, Any]:
    """What a plan is tied to, written next to it in the engine node.

    ``library`` is the TensorRT library that built it; TensorRT-RTX plans carry their target
    compute capabilities joined by commas. ``stripped``: the plan needs a refit at load.
    """
    found = {
        "tensorrt_version": tensorrt_version,
        "compute_capability": gpu.compute_capability,
        "gpu": gpu.name,
        "hardware_compatibility": hardware_compatibility,
        "stripped": stripped,
    }
    if library != TENSORRT:
        found["library"] = library
    return found


def _capability(text: str) -> tuple[int, int]:
    major, _, minor = str(text).partition(".")
    try:
        return int(major), int(minor or 0)
    except ValueError:
        return (-1, -1)


def incompatibility(fingerprint: Mapping[str, Any], tensorrt_version: str, gpu: GpuInfo,
                    library: str = TENSORRT) -> str:
    """Why a plan with ``fingerprint`` cannot run with this TensorRT on ``gpu`` ("" when it can).

    A plan runs only under the library and version that built it. A TensorRT-RTX plan runs on
    the compute capabilities it was built for; a TensorRT plan on a GPU of the compute
    capability that built it, unless it was built hardware-compatible: ``ampere_plus`` runs
    on any compute capability >= 8.0.
    """
    built_with = fingerprint.get("tensorrt_version")
    built_for = fingerprint.get("compute_capability")
    if not built_with or not built_for:
        return "the engine carries no TensorRT fingerprint"
    built_by = str(fingerprint.get("library", TENSORRT))
    if built_by != library or str(built_with) != tensorrt_version:
        return (f"built with {label(built_by)} {built_with}, this host has "
                f"{label(library)} {tensorrt_version}")
    if built_by == RTX:
        targets = str(built_for).split(",")
        if not rtx.runs_on(gpu.compute_capability, targets):
            return (f"built by TensorRT-RTX for compute capability {', '.join(targets)}; this "
                    f"GPU ({gpu.name}) has {gpu.compute_capability}")
        return ""
    level = fingerprint.get("hardware_compatibility", "none")
    here = _capability(gpu.compute_capability)
    if level == "ampere_plus":
        if here < (8, 0):
            return (f"built hardware-compatible for Ampere and newer; this GPU ({gpu.name}) has "
                    f"compute capability {gpu.compute_capability}")
        return ""
    if _capability(str(built_for)) != here:
        return (f"built for compute capability {built_for} ({fingerprint.get('gpu', '?')}); this "
                f"GPU ({gpu.name}) has {gpu.compute_capability}")
    return ""
