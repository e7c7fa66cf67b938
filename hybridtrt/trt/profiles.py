"""Optimization profiles: from recorded shape ranges to TensorRT settings, and choosing one."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from hybridtrt.trt.api import Profile, TensorRTFailure

__all__ = ["profile_settings", "select_profile", "widen"]

Shape = tuple[int, ...]


def profile_settings(
    network_inputs: Mapping[str, Sequence[int]], profile: Profile
) -> list[tuple[str, Shape, Shape, Shape]]:
    """The ``(name, min, opt, max)`` to set on one TensorRT optimization profile.

    Only inputs with a dynamic dimension (-1 in the parsed network) take a range; static ones
    are left as the network fixes them. Ranges are checked against the network's ranks and
    static dimensions, so a mismatch is reported with the input's name before TensorRT sees it.

    Args:
        network_inputs: Input name -> shape as the parsed network declares it.
        profile: The recorded range of each input.

    Raises:
        TensorRTFailure: A dynamic input has no range, or a range contradicts the network.
    """
    settings = []
    for name, dims in network_inputs.items():
        dims = tuple(int(d) for d in dims)
        if all(d >= 0 for d in dims):
            continue
        bounds = profile.get(name)
        if bounds is None:
            raise TensorRTFailure(f"input '{name}' has dynamic shape {list(dims)} but no recorded "
                                  "shape range")
        lo, opt, hi = (tuple(int(d) for d in bounds[k]) for k in ("min", "opt", "max"))
        for label, shape in (("min", lo), ("opt", opt), ("max", hi)):
            if len(shape) != len(dims):
                raise TensorRTFailure(f"input '{name}': {label} shape {list(shape)} has rank "
                                      f"{len(shape)}, the network has rank {len(dims)}")
            fixed = [axis for axis, d in enumerate(dims) if d >= 0 and shape[axis] != d]
            if fixed:
                raise TensorRTFailure(f"input '{name}': {label} shape {list(shape)} differs from "
                                      f"the network's static dimension(s) {fixed} of {list(dims)}")
        if not all(a <= b <= c for a, b, c in zip(lo, opt, hi)):
            raise TensorRTFailure(f"input '{name}': need min <= opt <= max, got {list(lo)}, "
                                  f"{list(opt)}, {list(hi)}")
        settings.append((name, lo, opt, hi))
    return settings


def _contains(profile: Profile, shapes: Mapping[str, Shape]) -> bool:
    for name, shape in shapes.items():
        bounds = profile.get(name)
        if bounds is None:
            continue
        lo, hi = bounds["min"], bounds["max"]
        if len(shape) != len(lo) or any(not a <= d <= b for d, a, b in zip(shape, lo, hi)):
            return False
    return True


def _volume(profile: Profile) -> int:
    total = 1
    for bounds in profile.values():
        for a, b in zip(bounds["min"], bounds["max"]):
            total *= int(b) - int(a) + 1
    return total


def select_profile(shapes: Mapping[str, Shape], profiles: Sequence[Profile]) -> int | None:
    """The index of the tightest profile that holds ``shapes`` (None when none does).

    The tightest one (smallest min..max volume, first on ties) is the one TensorRT tuned
    closest to these shapes.
    """
    fitting = [k for k, p in enumerate(profiles) if _contains(p, shapes)]
    if not fitting:
        return None
    return min(fitting, key=lambda k: (_volume(profiles[k]), k))


def widen(profiles: Sequence[Profile], shapes: Mapping[str, Shape]) -> tuple[dict[str, dict[str, list[int]]], ...]:
    """Profiles where the first one is stretched to hold ``shapes`` (for a rebuild).

    The first profile's min and max grow to include the new shapes; its opt stays; the other
    profiles are kept as they are.
    """
    if not profiles:
        return ({n: {"min": list(s), "opt": list(s), "max": list(s)} for n, s in shapes.items()},)
    first = {n: {k: list(b[k]) for k in ("min", "opt", "max")} for n, b in profiles[0].items()}
    for name, shape in shapes.items():
        bounds = first.setdefault(name, {"min": list(shape), "opt": list(shape), "max": list(shape)})
        if len(bounds["min"]) != len(shape):
            raise TensorRTFailure(f"input '{name}' has rank {len(shape)}, the engine's profiles "
                                  f"have rank {len(bounds['min'])}")
        bounds["min"] = [min(a, d) for a, d in zip(bounds["min"], shape)]
        bounds["max"] = [max(b, d) for b, d in zip(bounds["max"], shape)]
    rest = tuple({n: {k: list(b[k]) for k in ("min", "opt", "max")} for n, b in p.items()}
                 for p in profiles[1:])
    return (first, *rest)
