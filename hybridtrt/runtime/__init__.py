"""Running hybrid models: ``Config`` + ``create_predictor`` (Paddle style) or ``Predictor.run``."""

from hybridtrt.runtime.config import Config, PrecisionType, RuntimeSettings
from hybridtrt.runtime.plan import EnginePlacement
from hybridtrt.runtime.create import create_predictor
from hybridtrt.runtime.predictor import ModelMetadata, NodeArg, Predictor, Tensor

__all__ = ["Config", "EnginePlacement", "ModelMetadata", "NodeArg", "PrecisionType", "Predictor", "RuntimeSettings", "Tensor",
           "create_predictor"]
