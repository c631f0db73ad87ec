"""fsq_audio: a neural speech codec and speech tokenizer built on Finite Scalar Quantization.

    >>> from fsq_audio import Codec
    >>> codec = Codec.from_pretrained("fsq-speech-16k")
    >>> indices = codec.encode(wav)          # (B, 1, T) -> (B, stages, frames)
    >>> wav_hat = codec.decode(indices)      # -> (B, 1, frames * hop)
"""

__version__ = "0.1.0"

from fsq_audio.config import CodecConfig, TrainConfig  # noqa: E402
from fsq_audio.models.codec import Codec  # noqa: E402
from fsq_audio.quantize import FSQ, ResidualFSQ  # noqa: E402

__all__ = ["Codec", "CodecConfig", "FSQ", "ResidualFSQ", "TrainConfig", "__version__"]
