#!/usr/bin/env bash
# Everything the GPU machine checks, in one call: the CUDA tests and the runtime overhead table.
# Expects onnxruntime-gpu importable (see README "GPU check") and PADDLEOCR_MODELS_DIR set when
# rapidocr is not installed. Writes logs and the JSON table under ${OUT:-.}.
set -uo pipefail
out=${OUT:-.}
python3 -c "import onnxruntime as o, cuda.bindings, cupy; print('onnxruntime', o.__version__, o.get_available_providers())"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
PYTHONUNBUFFERED=1 python3 -m pytest tests/gpu -q -s -rs -p no:cacheprovider 2>&1 | tee "$out/gpu_tests.log" | grep -v "^\s*$" | tail -25
PYTHONUNBUFFERED=1 python3 benchmarks/runtime_overhead.py --device cuda --runs 200 --json "$out/runtime_cuda.json" 2>&1 | tee "$out/runtime_cuda.log" | tail -8
# Where a Predictor run spends its host time (inlined resnet50): the top of a profile.
PYTHONUNBUFFERED=1 python3 - <<'PY' 2>&1 | tail -22
import cProfile, logging, pstats, tempfile, numpy as np
from pathlib import Path
from hybridtrt import TensorRTConfig, convert
from hybridtrt.examples import onnx_light_model
from hybridtrt.runtime import Config, create_predictor
logging.getLogger("hybridtrt").setLevel(logging.ERROR)
saved = convert(onnx_light_model("resnet50"), TensorRTConfig()).save(Path(tempfile.mkdtemp()) / "r.onnx")
config = Config(saved); config.enable_use_gpu()
predictor = create_predictor(config)
feed = {"gpu_0/data_0": np.random.default_rng(0).standard_normal((1, 3, 224, 224)).astype(np.float32)}
for _ in range(20): predictor.run(feed)
profile = cProfile.Profile(); profile.enable()
for _ in range(200): predictor.run(feed)
profile.disable(); pstats.Stats(profile).sort_stats("tottime").print_stats(12)
PY
