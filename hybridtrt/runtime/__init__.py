"""Running hybrid models (Predictor and segment scheduler): see the runtime issue."""
