"""``create_predictor``: Paddle's entry point, for hybrid models and (online TensorRT) plain ones.

The one place the runtime reaches past itself: a config with ``enable_tensorrt_engine`` goes to
``hybridtrt.online``, which converts at load, imported only then.
"""

from __future__ import annotations

from hybridtrt.runtime.config import Config
from hybridtrt.runtime.predictor import Predictor

__all__ = ["create_predictor"]


def create_predictor(config: Config) -> Predictor:
    """Load the hybrid model named by ``config`` and plan its segments (Paddle style).

    With ``config.enable_tensorrt_engine(...)`` the model is a plain ONNX model, converted at
    load by ``hybridtrt.online`` (which returns an ``OnlinePredictor``).
    """
    settings = config.settings()
    if settings.tensorrt is not None:
        from hybridtrt.online.predictor import create_online_predictor  # the compiler, lazily
        return create_online_predictor(settings)  # type: ignore[return-value]
    return Predictor(settings)
