"""GAN losses (hinge or least squares) and feature matching over lists of discriminator outputs.

`real`/`fake` are lists (one per discriminator) of feature-map lists; the last map is the logit.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor


def discriminator_loss(real: list[list[Tensor]], fake: list[list[Tensor]], kind: str = "hinge") -> Tensor:
    """Loss of the discriminators (fake maps must come from detached generator output)."""
    loss = 0.0
    for r, f in zip(real, fake):
        r_logit, f_logit = r[-1].float(), f[-1].float()
        if kind == "hinge":
            loss = loss + F.relu(1 - r_logit).mean() + F.relu(1 + f_logit).mean()
        else:
            loss = loss + (1 - r_logit).square().mean() + f_logit.square().mean()
    return loss / len(real)


def generator_loss(fake: list[list[Tensor]], kind: str = "hinge") -> Tensor:
    """Adversarial loss of the generator."""
    loss = 0.0
    for f in fake:
        logit = f[-1].float()
        loss = loss + (F.relu(1 - logit).mean() if kind == "hinge" else (1 - logit).square().mean())
    return loss / len(fake)


def feature_matching_loss(real: list[list[Tensor]], fake: list[list[Tensor]]) -> Tensor:
    """Mean relative L1 between discriminator feature maps of real and generated audio."""
    loss, n = 0.0, 0
    for r, f in zip(real, fake):
        for a, b in zip(r[:-1], f[:-1]):
            loss = loss + F.l1_loss(b.float(), a.detach().float()) / (a.detach().float().abs().mean() + 1e-5)
            n += 1
    return loss / max(n, 1) if n else torch.zeros(())
