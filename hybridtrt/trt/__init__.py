"""TensorRT behind a narrow interface: everything else in hybridtrt talks to ``api`` only.

Only ``tensorrt_build`` and ``tensorrt_run`` import the ``tensorrt`` package; they are
type-checked against the real TensorRT 10.x and 11.x bindings (``tools/trt_typecheck.sh``).
The pure logic around them (profiles, fingerprints, the engine cache) lives in small modules
tested without TensorRT.
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
    load_backend,
)

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
