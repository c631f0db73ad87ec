"""Learning-rate schedules as LambdaLR multipliers (pure functions of the step)."""

from __future__ import annotations

import math
from collections.abc import Callable

from fsq_audio.config import TrainConfig


def lr_lambda(config: TrainConfig) -> Callable[[int], float]:
    """Multiplier of the base LR at optimiser step `step` (warm-up, then the chosen decay)."""

    def fn(step: int) -> float:
        if config.warmup_steps and step < config.warmup_steps:
            return (step + 1) / config.warmup_steps
        t = step - config.warmup_steps
        if config.schedule == "exponential":
            return config.lr_decay ** t
        if config.schedule == "cosine":
            total = max(1, config.max_steps - config.warmup_steps)
            return 0.5 * (1 + math.cos(math.pi * min(t, total) / total))
        return 1.0

    return fn
