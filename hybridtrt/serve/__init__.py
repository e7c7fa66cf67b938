"""Serving hybrid models on Ray Serve behind the Open Inference Protocol (KServe v2 REST)."""

from hybridtrt.serve.deployment import ServeSettings, deployment

__all__ = ["ServeSettings", "deployment"]
