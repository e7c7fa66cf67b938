"""Tools over hybrid models: benchmark, profile, compare and picture."""
