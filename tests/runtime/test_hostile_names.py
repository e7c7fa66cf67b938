"""Names read from a model file never become paths: an engine named like a path stays inside
the folder given for ONNX Runtime's profiles."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import onnx

from hybridtrt import Input, TensorRTConfig, convert
from hybridtrt.core.format import stamp_graph_digest
from hybridtrt.runtime import Config, create_predictor
from tests import models

CONFIG = TensorRTConfig(inputs=[Input("x", [1, 4], [2, 4], [8, 4])], disable_ops=["Sin"])


def test_an_engine_named_like_a_path_profiles_inside_the_profile_folder(tmp_path: Path) -> None:
    model = onnx.load(str(convert(models.split_chain(), CONFIG).save(tmp_path / "m.onnx")))
    engine = next(n for n in model.graph.node if n.op_type == "tensorrt_engine")
    engine.name = "../escaped/pwned"
    stamp_graph_digest(model)  # a crafted file, not a corrupted one: its checksum fits
    onnx.save(model, str(tmp_path / "evil.onnx"))
    (tmp_path / "escaped").mkdir()
    profiles = tmp_path / "profiles"
    profiles.mkdir()
    config = Config(str(tmp_path / "evil.onnx"))
    config.isolate_engines(True)  # the engine gets its own ORT session, named after it
    config.enable_profile(str(profiles / "p_"))
    predictor = create_predictor(config)
    assert "../escaped/pwned" in [s.name for s in predictor.engine_status()]
    predictor.run(None, {"x": np.ones((2, 4), np.float32)})
    written = [Path(p).resolve() for p in predictor.end_profiling().values()]
    assert written and all(p.parent == profiles.resolve() for p in written), written
    assert not list((tmp_path / "escaped").iterdir())
