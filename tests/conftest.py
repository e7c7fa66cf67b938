"""Test-wide settings: which TensorRT library the code under test may load.

With TensorRT-RTX installed (CI installs it), ``backend="auto"`` would build real RTX engines in
every test. Tests that expect no TensorRT get ``HYBRIDTRT_BACKEND=none``; the TensorRT-RTX tests
name their library; the real-TensorRT tests use TensorRT where it is installed.
"""

from __future__ import annotations

import os

from hybridtrt.trt.library import TENSORRT, installed

os.environ.setdefault("HYBRIDTRT_BACKEND", TENSORRT if installed(TENSORRT) else "none")
