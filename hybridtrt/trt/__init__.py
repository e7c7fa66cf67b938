"""TensorRT behind a narrow interface: everything else in hybridtrt talks to ``api``
(the protocols) and ``backends`` (loading one) only.

The ``tensorrt_*`` modules call the TensorRT library ``library`` bound for the process
(``tensorrt``, or ``tensorrt_rtx`` for TensorRT-RTX), and are loaded only by ``backends.load_backend``;
they are type-checked against TensorRT 10.x, 11.x and TensorRT-RTX 1.7 stubs
(``tools/trt_typecheck.sh``). The pure logic around them (profiles, fingerprints, the engine
cache, TensorRT-RTX's targets in ``rtx``) lives in small modules tested without TensorRT.
"""

from hybridtrt.trt.api import (
    BuildOutput,
    BuildSpec,
    GpuInfo,
    ParserVerdict,
    TensorRTFailure,
    TrtBackend,
    TrtContext,
    TrtEngine,
)
from hybridtrt.trt.backends import load_backend

__all__ = [
    "BuildOutput",
    "BuildSpec",
    "GpuInfo",
    "ParserVerdict",
    "TensorRTFailure",
    "TrtBackend",
    "TrtContext",
    "TrtEngine",
    "load_backend",
]
