"""Whether this machine runs the CUDA paths, and why not: what the CUDA tests skip on.

onnxruntime-gpu lists CUDAExecutionProvider even where its libraries cannot load, so the listing is
not the test: the provider's own availability check (which loads its library) is.
"""

from __future__ import annotations

import torch

from actexport.runtimes.onnxrt import OrtRuntime

TORCH_CUDA = torch.cuda.is_available()
ORT_CUDA_PROBLEM = OrtRuntime("cuda").unavailable()  # None: onnxruntime's CUDA provider loads here
ORT_CUDA = ORT_CUDA_PROBLEM is None and TORCH_CUDA  # and there is a card for it
NO_ORT_CUDA = f"needs a CUDA device and onnxruntime's CUDA provider ({ORT_CUDA_PROBLEM or 'no CUDA device'})"
