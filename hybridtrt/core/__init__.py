"""The ground floor the compiler and the runtime both stand on: the graph index, partition
primitives, subgraph extraction and inlining, the hybrid format with ``HybridModel``, the FP32
emulation of low precision, and file writing. It imports neither ``compiler`` nor ``runtime``."""
