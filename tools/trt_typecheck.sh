#!/usr/bin/env bash
# Type-check hybridtrt's TensorRT modules against the real TensorRT 10.x and 11.x Python APIs and
# the TensorRT-RTX 1.7 API. typings/ holds stubs generated from NVIDIA's bindings (TensorRT 10.16
# and 11.4, TensorRT-RTX 1.7); the RTX pass also names them `tensorrt`, because the shared
# modules run on either library. A name or signature that does not exist fails here, without a
# GPU. This proves the API is used as it exists, not that it behaves as expected.
# usage: tools/trt_typecheck.sh [PATH...]   (default: every module that imports tensorrt)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ $# -eq 0 ]; then
  mapfile -t files < <(grep -rlE --include='*.py' '^\s*(import tensorrt|from tensorrt)(_rtx)?\b' hybridtrt | sort)
  set -- "${files[@]}"
fi
python=${PYTHON:-python}
"$python" -m mypy --version >/dev/null || { echo "mypy is missing: pip install mypy" >&2; exit 2; }
status=0
for api in 10 11 rtx; do
  case $api in rtx) echo "== TensorRT-RTX 1.7 API: $*";; *) echo "== TensorRT $api.x API: $*";; esac
  MYPYPATH="typings/tensorrt-$api" "$python" -m mypy --ignore-missing-imports --follow-imports=silent \
    --no-incremental --check-untyped-defs "$@" || status=1
done
exit $status
