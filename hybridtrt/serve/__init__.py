"""Serving hybrid models on Ray Serve behind the Open Inference Protocol (KServe v2 REST)."""

from hybridtrt.serve.deployment import application, deployment
from hybridtrt.serve.settings import ServeSettings

__all__ = ["ServeSettings", "application", "deployment"]
