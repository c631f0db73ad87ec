"""Evaluation: objective metrics, classic-codec baselines and reports (`fsq-audio eval`).

Python API: `evaluate(codec_or_None, rows, stages, baselines, out_dir) -> dict`.
"""

from fsq_audio.eval.runner import evaluate

__all__ = ["evaluate"]
