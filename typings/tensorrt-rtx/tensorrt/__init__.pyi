# TensorRT-RTX under the name `tensorrt`, so the modules shared by both libraries are checked
# against its API too (hybridtrt.trt.library binds one module as `trt`).
from tensorrt_rtx import *
