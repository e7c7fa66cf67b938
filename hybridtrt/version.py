"""The hybridtrt release, written into every hybrid model it saves."""

from __future__ import annotations

__all__ = ["__version__"]

__version__ = "0.1.0"
