"""Indexes beside the store: encoders, vector index, keyword query syntax.

onnxruntime, when installed, is loaded here, before any submodule can load usearch:
importing onnxruntime after usearch crashes the process (a segmentation fault inside
onnxruntime's module initialisation, seen with usearch 2.26.6 and onnxruntime 1.31.1),
while the other order works.
"""

import importlib.util

if importlib.util.find_spec("onnxruntime") is not None:
    import onnxruntime  # type: ignore[import-untyped]  # noqa: F401
