"""TensorRT-RTX's rules: which GPUs its plans run on, and what a build targets by default.

TensorRT-RTX builds ahead of time for a list of compute capabilities, without a GPU, and runs
only on the RTX-class ones among them.
"""

from __future__ import annotations

from collections.abc import Sequence

from hybridtrt.trt.api import BuildTarget, GpuInfo

__all__ = ["BUILDABLE", "DEFAULT_TARGETS", "check_targets", "runs_on", "target"]

BUILDABLE = ("7.5", "8.0", "8.6", "8.9", "12.0", "12.1")
"""Compute capabilities TensorRT-RTX 1.x can build for (its ``ComputeCapability`` names)."""

DEFAULT_TARGETS = ("8.0", "8.6", "8.9", "12.0")
"""What a build without a usable GPU targets: the GPUs TensorRT-RTX 1.7 runs on."""


def _canonical(text: str) -> str:
    major, _, minor = str(text).strip().partition(".")
    return f"{int(major)}.{int(minor or 0)}" if major.isdigit() and (minor or "0").isdigit() else str(text)


def check_targets(requested: Sequence[str]) -> tuple[str, ...]:
    """``requested`` in canonical form, sorted and without repeats (ValueError names a bad one)."""
    found = []
    for text in requested:
        cc = _canonical(text)
        if cc not in BUILDABLE:
            raise ValueError(f"compute capability {text!r} is not one TensorRT-RTX builds for "
                             f"(one of {', '.join(BUILDABLE)})")
        found.append(cc)
    return tuple(sorted(set(found), key=lambda c: tuple(int(p) for p in c.split("."))))


def runs_on(compute_capability: str, targets: Sequence[str] = DEFAULT_TARGETS) -> bool:
    """Whether a plan built for ``targets`` runs on a GPU of ``compute_capability``."""
    return _canonical(compute_capability) in {_canonical(t) for t in targets}


def target(requested: Sequence[str], gpu: GpuInfo | None) -> BuildTarget:
    """The build target: the requested capabilities, else this GPU's when RTX runs on it, else
    ``DEFAULT_TARGETS``. Weight-stripped plans need a GPU at build time."""
    chosen = check_targets(requested)
    if not chosen and gpu is not None and runs_on(gpu.compute_capability, BUILDABLE):
        chosen = (_canonical(gpu.compute_capability),)
    chosen = chosen or DEFAULT_TARGETS
    name = f"TensorRT-RTX targets {', '.join(chosen)}"
    return BuildTarget(GpuInfo(name, ",".join(chosen)), chosen, can_strip=gpu is not None)
