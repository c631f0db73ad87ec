"""Finite Scalar Quantization and its residual variant."""

from fsq_audio.quantize.fsq import FSQ, code_usage
from fsq_audio.quantize.residual import ResidualFSQ

__all__ = ["FSQ", "ResidualFSQ", "code_usage"]
