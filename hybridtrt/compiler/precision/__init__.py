"""Stage 5, precision: each cluster's precision written into its graph before the build.

``stage`` (the stage ``convert`` runs), ``lowp`` (FP16/BF16 lowering), ``guards`` (the nodes
kept in FP32), ``int8`` and ``calibration`` (Q/DQ insertion and scales), ``sensitivity`` (which
INT8 nodes hurt accuracy most) and ``accuracy`` (the guard that checks lowered clusters).
"""
