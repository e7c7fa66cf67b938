"""Tools over hybrid models: benchmark, profile, compare and picture (``hybridtrt bench`` ...)."""

from hybridtrt.tools.bench import BenchResult, BenchSettings, benchmark
from hybridtrt.tools.compare import CompareResult, compare
from hybridtrt.tools.picture import render_file, view_of_hybrid, view_of_model
from hybridtrt.tools.profile import ProfileResult, ProfileSettings, profile
from hybridtrt.tools.target import Target, load_target

__all__ = ["BenchResult", "BenchSettings", "CompareResult", "ProfileResult", "ProfileSettings",
           "Target", "benchmark", "compare", "load_target", "profile", "render_file",
           "view_of_hybrid", "view_of_model"]
