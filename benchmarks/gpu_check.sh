#!/usr/bin/env bash
# Everything the GPU machine checks, in one call: the CUDA tests and the runtime overhead table.
# Expects onnxruntime-gpu importable (see docs/PERFORMANCE.md, "GPU check") and PADDLEOCR_MODELS_DIR set when
# rapidocr is not installed. Writes logs and the JSON table under ${OUT:-.}.
set -uo pipefail
out=${OUT:-.}
python3 -c "import onnxruntime as o, cuda.bindings, cupy; print('onnxruntime', o.__version__, o.get_available_providers())"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
CUDA_LAUNCH_BLOCKING=${GPU_TESTS_BLOCKING:-0} PYTHONUNBUFFERED=1 python3 -m pytest tests/gpu -q -s -rs -p no:cacheprovider 2>&1 | grep -v "No registered plugin EP" | tee "$out/gpu_tests.log" | grep -v "^\s*$" | grep -v "^case " | tail -25
grep "^case " "$out/gpu_tests.log" | tail -2
# the Python examples of README.md and docs/, whose GPU branches (CUDA graphs) run only here
python3 -m pytest tests/test_readme.py -q -k python_examples -p no:cacheprovider 2>&1 | tail -2
PYTHONUNBUFFERED=1 python3 benchmarks/runtime_overhead.py --device cuda --runs 200 --json "$out/runtime_cuda.json" 2>&1 | tee "$out/runtime_cuda.log" | tail -8
python3 -m hybridtrt bench "$(python3 -c 'from hybridtrt.examples import onnx_light_model as m; print(m("resnet50"))')" --gpu 0 --compare ort --iterations 200 -q 2>&1 | tee "$out/bench_cuda.log" | tail -16
# the YOLOv8-class detector, exported from PyTorch here, with CUDA graphs
python3 benchmarks/yolo_like.py "$out/yolo.onnx" && python3 -m hybridtrt bench "$out/yolo.onnx" --gpu 0 --compare ort --cuda-graph --iterations 200 -q 2>&1 | tee "$out/bench_yolo.log" | tail -12
# against ONNX Runtime's own whole-session CUDA graph, fed and answered on the device
python3 benchmarks/cuda_graph_anchor.py --runs 100 2>&1 | tee "$out/anchor.log" | grep -v "^resnet50:\|^yolo:" | tail -4
