"""One training step (discriminator then generator) and validation, DAC-style.

Losses come back as a flat `{"group/name": value}` dict; each is weighted by the config's
lambdas, and a weight-0 loss is computed and logged but not trained on.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from accelerate import Accelerator
from torch import Tensor, nn

from fsq_audio.config import TrainConfig
from fsq_audio.losses.adversarial import discriminator_loss, feature_matching_loss, generator_loss
from fsq_audio.losses.spectral import MelDistance, MultiResolutionSTFTLoss, MultiScaleMelLoss
from fsq_audio.quantize.fsq import code_usage


@dataclass
class TrainState:
    """Everything a step needs, passed explicitly (no module globals)."""

    config: TrainConfig
    accelerator: Accelerator
    generator: nn.Module
    discriminator: nn.Module
    opt_g: torch.optim.Optimizer
    opt_d: torch.optim.Optimizer
    sched_g: torch.optim.lr_scheduler.LRScheduler
    sched_d: torch.optim.lr_scheduler.LRScheduler
    mel_loss: nn.Module
    stft_loss: nn.Module


def build_losses(config: TrainConfig) -> tuple[nn.Module, nn.Module]:
    lc = config.loss
    return (MultiScaleMelLoss(config.model.sample_rate, lc.mel_windows, lc.mel_bins),
            MultiResolutionSTFTLoss(lc.stft_windows))


def adversarial_active(config: TrainConfig, step: int) -> bool:
    return (config.loss.adv > 0 or config.loss.feature > 0) and step >= config.adversarial_start


def train_step(state: TrainState, batch: Tensor, step: int) -> dict[str, float]:
    """Discriminator update (once adversarial training has started), then generator update."""
    cfg, acc = state.config, state.accelerator
    lam = cfg.loss
    out: dict[str, float] = {}
    adv = adversarial_active(cfg, step)
    with acc.accumulate(state.generator, state.discriminator):
        with acc.autocast():
            y_hat, indices, aux = state.generator(batch, return_aux=True)
        if adv:
            with acc.autocast():
                d_loss = discriminator_loss(state.discriminator(batch), state.discriminator(y_hat.detach()), lam.gan)
            acc.backward(d_loss)
            if acc.sync_gradients:
                out["grad/disc"] = float(acc.clip_grad_norm_(state.discriminator.parameters(), cfg.grad_clip))
            state.opt_d.step()
            state.sched_d.step()
            state.opt_d.zero_grad(set_to_none=True)
            out["adv/disc"] = d_loss.item()
        losses = {
            "spec/mel": state.mel_loss(y_hat, batch),
            "spec/stft": state.stft_loss(y_hat, batch),
            "spec/waveform": (y_hat.float() - batch.float()).abs().mean(),
            **aux,
        }
        if adv:
            with acc.autocast():
                fake = state.discriminator(y_hat)
                with torch.no_grad():
                    real = state.discriminator(batch)
            losses["adv/gen"] = generator_loss(fake, lam.gan)
            losses["adv/feature"] = feature_matching_loss(real, fake)
        weights = {"spec/mel": lam.mel, "spec/stft": lam.stft, "spec/waveform": lam.waveform,
                   "adv/gen": lam.adv, "adv/feature": lam.feature,
                   "quant/usage": lam.usage, "quant/saturation": lam.saturation}
        total = sum(weights[k] * v for k, v in losses.items() if weights[k] > 0)
        acc.backward(total)
        if acc.sync_gradients:
            out["grad/gen"] = float(acc.clip_grad_norm_(state.generator.parameters(), cfg.grad_clip))
        state.opt_g.step()
        state.sched_g.step()
        state.opt_g.zero_grad(set_to_none=True)
        state.discriminator.zero_grad(set_to_none=True)  # grads from the generator's adversarial loss
    out.update({k: float(v.detach()) for k, v in losses.items()})
    out["total"] = float(total.detach())
    out["code/distinct_s1"] = float(indices[:, 0].unique().numel())
    out["lr"] = state.sched_g.get_last_lr()[0]
    return out


@torch.no_grad()
def validate(generator: nn.Module, clips: list[Tensor], stages: list[int], sample_rate: int,
             want_pesq: bool = True) -> tuple[dict[str, float], list[Tensor]]:
    """Mel distance (and PESQ-WB/STOI when installed) of the training forward on fixed clips.

    Returns:
        (metrics, reconstructions at full stages for logging). Metrics: "valid/mel_s{n}",
        "valid/pesq_wb_s{n}", "valid/stoi_s{n}" decoded from n stages, and
        "valid/code_bits_stage{n}", the entropy in bits of stage n's own codes over the clips
        (0 means the stage collapsed to one code; at most log2(codebook size)).
    """
    device = next(generator.parameters()).device
    was_training = generator.training
    generator.eval()
    mel = MelDistance(sample_rate).to(device)
    metrics: dict[str, list[float]] = {}
    recon: list[Tensor] = []
    stage_codes: dict[int, list[Tensor]] = {}
    try:
        for n in stages:
            for clip in clips:
                x = clip.to(device).unsqueeze(0)
                y, idx = generator(x, n)
                metrics.setdefault(f"valid/mel_s{n}", []).append(float(mel(y, x)))
                stage_codes.setdefault(n, []).append(idx[0, n - 1].cpu())
                if n == stages[-1]:
                    recon.append(y[0].float().cpu())
                if want_pesq:
                    for k, v in _perceptual(x[0, 0].cpu().numpy(), y[0, 0].float().cpu().numpy(), sample_rate).items():
                        metrics.setdefault(f"valid/{k}_s{n}", []).append(v)
    finally:
        generator.train(was_training)
    out = {k: sum(v) / len(v) for k, v in metrics.items() if v}
    for n, codes in stage_codes.items():  # entropy of stage n's own codes: 0 bits means collapse
        flat = torch.cat(codes)
        out[f"valid/code_bits_stage{n}"] = code_usage(flat, generator.config.codebook_size)["entropy_bits"]
    return out, recon


def _perceptual(ref, deg, sample_rate: int) -> dict[str, float]:
    out = {}
    try:
        from pesq import pesq

        out["pesq_wb"] = float(pesq(16000, ref, deg, "wb")) if sample_rate == 16000 else float("nan")
    except Exception:  # not installed, or no utterance detected
        pass
    try:
        from pystoi import stoi

        out["stoi"] = float(stoi(ref, deg, sample_rate, extended=False))
    except Exception:
        pass
    return {k: v for k, v in out.items() if v == v}
