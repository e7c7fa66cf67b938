#!/usr/bin/env bash
# On a GPU host with TensorRT, onnxruntime-gpu and cuda-python: build and run real engines for
# the PaddleOCR models, the onnx CNNs and the onnx backend suite, compared with ONNX Runtime.
# usage: bash benchmarks/tensorrt_check.sh   (logs under ${OUT:-.})
set -uo pipefail
out=${OUT:-.}
python3 -c "import tensorrt as t; print('TensorRT', t.__version__)" || { echo "TensorRT is not installed here" >&2; exit 2; }
python3 -c "import onnxruntime as o; print('onnxruntime', o.__version__, o.get_available_providers())"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
PYTHONUNBUFFERED=1 python3 -m pytest tests/tensorrt -q -s -rs -p no:cacheprovider 2>&1 | tee "$out/tensorrt_tests.log" | tail -25
