"""ONNX Runtime RunOptions for the CUDA device: CUDA graph ids and runs without a stream sync."""

from __future__ import annotations

from typing import Any

__all__ = ["graph_run_options", "unsynced_run_options"]


def _run_options(**entries: str) -> Any:
    """ORT RunOptions with these config entries (each must name ``gpu_graph_id``: see
    ``CudaDevice._run_fresh``)."""
    import onnxruntime as ort

    options = ort.RunOptions()
    for key, value in entries.items():
        options.add_run_config_entry(key, value)
    return options


def graph_run_options(graphs: int) -> list[Any]:
    """RunOptions for CUDA graph sessions: ``[no capture, graph 0, ..., graph graphs-1]``."""
    return [_run_options(gpu_graph_id=str(graph_id)) for graph_id in range(-1, graphs)]


def unsynced_run_options() -> Any:
    """RunOptions for a run that skips ORT's stream sync at its end (``graphs.unsynced_safe``)."""
    return _run_options(gpu_graph_id="-1", disable_synchronize_execution_providers="1")
