"""Exponential moving average of the generator's parameters (checkpointable)."""

from __future__ import annotations

import torch
from torch import nn


class EMA:
    """Shadow copy of a module's floating-point state, updated as ema = d * ema + (1 - d) * param.

    The decay warms up as d_t = min(decay, (1 + t) / (10 + t)) for optimiser step t, so a short
    run's average is not dominated by the random initial weights.
    """

    def __init__(self, model: nn.Module, decay: float):
        self.decay = decay
        self.shadow = {k: v.detach().clone().float() for k, v in model.state_dict().items() if v.is_floating_point()}

    @torch.no_grad()
    def update(self, model: nn.Module, step: int) -> None:
        """Blend in the weights after optimiser step `step` (0-based)."""
        d = min(self.decay, (1 + step) / (10 + step))
        for k, v in model.state_dict().items():
            if k in self.shadow:
                self.shadow[k].mul_(d).add_(v.detach().float(), alpha=1 - d)

    def state_dict(self) -> dict:
        return {"decay": self.decay, "shadow": self.shadow}

    def load_state_dict(self, state: dict) -> None:
        self.decay = state["decay"]
        self.shadow = {k: v.clone() for k, v in state["shadow"].items()}

    def copy_to(self, model: nn.Module) -> None:
        """Load the averaged weights into `model` (same architecture)."""
        state = model.state_dict()
        state.update({k: v.to(state[k].dtype) for k, v in self.shadow.items()})
        model.load_state_dict(state)
