"""fsq_audio: a neural speech codec and speech tokenizer built on Finite Scalar Quantization.

    >>> from fsq_audio import Codec
    >>> codec = Codec.from_pretrained("fsq-speech-16k")
    >>> indices = codec.encode(wav)          # (B, 1, T) -> (B, stages, frames)
    >>> wav_hat = codec.decode(indices)      # -> (B, 1, frames * hop)

Public names are imported on first use, so `import fsq_audio` (and scripts that only need
the data or recipe helpers) does not pay for importing torch.
"""

from __future__ import annotations

import importlib

__version__ = "0.2.0"

_LAZY = {
    "Codec": "fsq_audio.models.codec",
    "CodecConfig": "fsq_audio.config",
    "TrainConfig": "fsq_audio.config",
    "FSQ": "fsq_audio.quantize.fsq",
    "ResidualFSQ": "fsq_audio.quantize.residual",
}
__all__ = [*_LAZY, "__version__"]


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(_LAZY[name]), name)
    raise AttributeError(f"module 'fsq_audio' has no attribute {name!r}")
