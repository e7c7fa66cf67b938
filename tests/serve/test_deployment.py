"""``deployment`` of a plain ONNX model over protobuf's 2 GiB: converted once in the driver and
saved beside it for the replicas (its bytes cannot be handed over). The limit is lowered so a
small model takes that way; no Ray cluster is started."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

import hybridtrt.core.external as external
from hybridtrt.runtime import Config, create_predictor
from tests.models import matmul_chain_file

pytest.importorskip("ray.serve")
from hybridtrt.serve import deployment  # noqa: E402  (after the skip: it needs Ray)
from hybridtrt.serve.deployment import replica_model  # noqa: E402

deployment_module = sys.modules["hybridtrt.serve.deployment"]  # (the package's ``deployment``
# is the function)

WIDTH = 64


def _plain(folder: Path) -> Path:
    """Four MatMuls (no Sigmoid: one engine), their weights in a data file."""
    return matmul_chain_file(folder, count=4, width=WIDTH, pieces=1)


def test_a_plain_model_over_2_gib_is_saved_beside_it_for_the_replicas(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(external, "LARGE_ABOVE", 40_000)  # (4 weights of 16 KiB)
    path = _plain(tmp_path)
    saved = tmp_path / "_opt_cache" / "serve" / "model.hybrid.onnx"
    assert replica_model(path) == (saved, None)  # the replicas read the saved file
    deployment(path)
    assert saved.is_file() and list(saved.parent.glob("*.data"))  # weights in a data file
    x = np.random.default_rng(1).standard_normal((2, WIDTH)).astype(np.float32)
    want = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"]).run(None, {"x": x})
    got = create_predictor(Config(saved)).run(None, {"x": x})
    np.testing.assert_allclose(got[0], want[0], rtol=1e-5, atol=1e-5)


def test_a_plain_model_under_the_limit_leaves_no_file(tmp_path: Path) -> None:
    path = _plain(tmp_path)
    given, hybrid = replica_model(path)  # its bytes go to the replicas
    assert given == path and hybrid is not None and b"tensorrt_engine" in hybrid
    deployment(path)
    assert not (tmp_path / "_opt_cache").exists()


def test_a_model_whose_plans_take_it_past_2_gib_is_saved_too(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Plans are not weights (``is_large`` counts tensors): a model under the weights' limit
    can still be over protobuf's 2 GiB with them. A stand-in for such a model's serialization
    raises what protobuf raises."""
    real = deployment_module.inlined_model

    class TooLarge:
        def __init__(self, model: onnx.ModelProto) -> None:
            self.model = model

        def SerializeToString(self) -> bytes:  # noqa: N802 - protobuf's name
            raise ValueError("Message onnx.ModelProto exceeds maximum protobuf size of 2GB")

    monkeypatch.setattr(deployment_module, "inlined_model", lambda model: TooLarge(real(model)))
    path = _plain(tmp_path)
    saved = tmp_path / "_opt_cache" / "serve" / "model.hybrid.onnx"
    assert replica_model(path) == (saved, None) and saved.is_file()


def test_an_unwritable_folder_is_a_clear_error(tmp_path: Path,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    from hybridtrt import ConfigError

    monkeypatch.setattr(external, "LARGE_ABOVE", 40_000)
    path = _plain(tmp_path)
    (tmp_path / "_opt_cache").write_text("a file where the folder would be")
    with pytest.raises(ConfigError, match="over 2 GiB.*cannot be made.*convert it first"):
        deployment(path)
