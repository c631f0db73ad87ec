"""LM training loop on token shards, with the codec trainer's conventions.

accelerate (`prepare`/`accumulate`/`save_state`), atomic checkpoint directories
(`fsq_audio.train.checkpoints`), SIGINT/SIGTERM -> checkpoint and exit, `--resume`, tqdm,
`train.jsonl`/`valid.jsonl` logs, and a release directory (config.json + model.safetensors)
exported at the end. Validation loss is reported in bits per token (one stage's code of one
frame) and bits per second of audio.
"""

from __future__ import annotations

import json
import math
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from torch.utils.data import DataLoader
from tqdm import tqdm

from fsq_audio.config import from_dict, to_dict
from fsq_audio.errors import ConfigError
from fsq_audio.lm.config import LMConfig, LMTrainConfig
from fsq_audio.lm.data import read_meta, split_padding, train_dataset, valid_dataset
from fsq_audio.lm.model import TokenLM
from fsq_audio.train import checkpoints
from fsq_audio.train.schedule import lr_lambda
from fsq_audio.train.trainer import _append_jsonl, _StopFlag, start_run

LN2 = math.log(2)


def resolve_model_config(config: LMTrainConfig, meta: dict) -> LMConfig:
    """The recipe's model config with the codec fields taken from the token shards' meta.json."""
    return config.model.with_codec(meta["levels"], meta["stages"], meta["frame_rate"], meta["model_id"])


def load_run_config(run_dir: str | Path) -> LMTrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not an LM training run (no config.json)")
    return from_dict(LMTrainConfig, json.loads(path.read_text()))


def build_optimizer(lm: TokenLM, config: LMTrainConfig) -> torch.optim.Optimizer:
    """AdamW; weight decay only on matrices of the transformer and depth head (not norms/embeddings)."""
    decay, no_decay = [], []
    for name, p in lm.named_parameters():
        (decay if p.dim() >= 2 and "embed" not in name else no_decay).append(p)
    groups = [{"params": decay, "weight_decay": config.weight_decay}, {"params": no_decay, "weight_decay": 0.0}]
    return torch.optim.AdamW(groups, lr=config.lr, betas=tuple(config.betas))


def sample_stages(batch: int, k: int, p: float, device: torch.device) -> torch.Tensor | None:
    """Stage dropout: each item keeps all k stages, or with probability p a random prefix 1..k."""
    if p <= 0 or k < 2:
        return None
    prefix = torch.randint(1, k + 1, (batch,), device=device)
    return torch.where(torch.rand(batch, device=device) < p, prefix, torch.full_like(prefix, k))


@torch.no_grad()
def evaluate(lm: TokenLM, loader: DataLoader) -> dict[str, float]:
    """Bits per token / per second of audio over fixed segments (each starts a fresh context).

    A token is one stage's code of one frame; bits per second count the modelled stages only.
    """
    lm.eval()
    cfg, device = lm.config, next(lm.parameters()).device
    n = cfg.symbols_per_stage
    bits = torch.zeros(cfg.num_stages, dtype=torch.float64)
    frames = 0
    for batch in loader:
        codes, lengths = split_padding(batch.to(device))
        nll, mask = lm(codes, lengths)
        per_stage = (nll * mask).view(*nll.shape[:2], -1, n).sum(dim=(0, 1, 3)).double().cpu() / LN2
        bits[: per_stage.numel()] += per_stage
        frames += int(lengths.sum())
    k = cfg.num_stages
    out = {"bits_per_token": float(bits.sum()) / max(1, frames * k),
           "bits_per_second": float(bits.sum()) / max(1, frames) * cfg.frame_rate,
           "fixed_bits_per_second": k * math.ceil(math.log2(cfg.codebook_size)) * cfg.frame_rate,
           "frames": frames}
    out.update({f"bits_per_token_stage{s}": float(bits[s]) / max(1, frames) for s in range(k)})
    return out


def train_step(lm, batch, acc: Accelerator, opt, sched, config: LMTrainConfig) -> dict[str, float]:
    """One (micro)batch: masked mean NLL over the symbols that count; returns logs in bits."""
    codes, lengths = split_padding(batch)
    base = acc.unwrap_model(lm).config
    with acc.accumulate(lm):
        n_stages = sample_stages(codes.shape[0], min(base.num_stages, codes.shape[1]),
                                 base.stage_dropout, codes.device)
        nll, mask = lm(codes, lengths, n_stages)
        total = (nll * mask).sum()
        count = mask.sum().clamp_min(1)
        acc.backward(total / count)
        if acc.sync_gradients and config.grad_clip > 0:
            acc.clip_grad_norm_(lm.parameters(), config.grad_clip)
        opt.step()
        if acc.sync_gradients:
            sched.step()
        opt.zero_grad(set_to_none=True)
    bits = float(total.detach()) / LN2
    return {"bits_per_symbol": bits / float(count), "bits_per_token": bits * base.symbols_per_stage / float(count)}


def train_lm(config: LMTrainConfig, resume: bool = False) -> Path:
    """Run (or resume) LM training; returns the run directory."""
    run_dir = Path(config.run_dir)
    checkpoints.remove_stale(run_dir)
    last = checkpoints.latest_checkpoint(run_dir)
    if last is not None and not resume:
        raise ConfigError(f"{run_dir} already holds checkpoints; pass --resume or choose another run_dir")
    meta = read_meta(config.data.train)
    config.model = resolve_model_config(config, meta)
    valid = None
    if config.data.valid:
        if read_meta(config.data.valid)["model_id"] != meta["model_id"]:
            raise ConfigError("data.valid tokens come from another codec than data.train")
        valid = DataLoader(valid_dataset(config.data.valid, config.data.segment_frames, config.data.valid_items),
                           batch_size=config.batch_size)
    if last is not None and to_dict(load_run_config(run_dir).model) != to_dict(config.model):
        raise ConfigError(f"{run_dir}: model config differs from the run's config.json; use a new run_dir")
    acc = start_run(config, run_dir)
    lm = TokenLM(config.model)
    opt = build_optimizer(lm, config)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_lambda(config))
    ds = train_dataset(config.data.train, config.data.segment_frames, config.data.min_frames, config.seed)
    dl = DataLoader(ds, batch_size=config.batch_size, shuffle=False, drop_last=len(ds) >= config.batch_size,
                    num_workers=config.data.num_workers)
    lm, opt, sched, dl = acc.prepare(lm, opt, sched, dl)
    progress = {"step": 0, "epoch": 0, "batch_in_epoch": 0}
    if last is not None:
        acc.load_state(str(last))
        progress.update(checkpoints.read_state(last))
        acc.print(f"resumed from {last} at step {progress['step']}")
    acc.print(f"LM: {acc.unwrap_model(lm).num_parameters() / 1e6:.2f} M parameters, "
              f"{config.model.num_stages} of {config.model.token_stages} stages, {len(ds)} crops per epoch")
    _loop(lm, opt, sched, dl, acc, config, valid, progress, run_dir)
    return run_dir


def save_checkpoint(acc: Accelerator, progress: dict, run_dir: Path, keep: int) -> Path:
    tmp, final = checkpoints.begin(run_dir, progress["step"])
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    if acc.is_main_process:
        checkpoints.commit(tmp, final, dict(progress), keep)
    acc.wait_for_everyone()
    return final


def _loop(lm, opt, sched, dl, acc, config: LMTrainConfig, valid, progress: dict, run_dir: Path) -> None:
    bar = tqdm(total=config.max_steps, initial=progress["step"], disable=not acc.is_main_process, unit="step",
               dynamic_ncols=True, file=sys.stderr)
    frames_per_step = config.batch_size * config.data.segment_frames * acc.num_processes * config.grad_accum
    t_last, logs = time.perf_counter(), {}
    with _StopFlag() as stop:
        while progress["step"] < config.max_steps and stop.signal is None:
            dl.dataset.set_epoch(progress["epoch"])
            loader = acc.skip_first_batches(dl, progress["batch_in_epoch"]) if progress["batch_in_epoch"] else dl
            for batch in loader:
                lm.train()
                out = train_step(lm, batch, acc, opt, sched, config)
                progress["batch_in_epoch"] += 1
                if not acc.sync_gradients:
                    continue
                progress["step"] += 1
                bar.update(1)
                for k, v in out.items():
                    logs.setdefault(k, []).append(v)
                if progress["step"] % config.log_every == 0:
                    now = time.perf_counter()
                    means = {k: sum(v) / len(v) for k, v in logs.items()}
                    speed = frames_per_step * config.log_every / (now - t_last) / config.model.frame_rate
                    t_last, logs = now, {}
                    bar.set_postfix({"bits/tok": f"{means['bits_per_token']:.3f}", "audio_s/s": f"{speed:.0f}"})
                    if acc.is_main_process:
                        _append_jsonl(run_dir / "train.jsonl", {"step": progress["step"], **means,
                                                                "lr": sched.get_last_lr()[0], "audio_s_per_s": speed})
                _periodic(lm, acc, config, valid, progress, run_dir)
                if progress["step"] >= config.max_steps or stop.signal is not None:
                    break
            else:
                progress["epoch"] += 1
                progress["batch_in_epoch"] = 0
    bar.close()
    _finish(lm, acc, config, valid, progress, run_dir, stop.signal)


def _periodic(lm, acc, config: LMTrainConfig, valid, progress: dict, run_dir: Path) -> None:
    step = progress["step"]
    if config.save_every and step % config.save_every == 0:
        save_checkpoint(acc, progress, run_dir, config.keep_checkpoints)
    if valid and config.valid_every and step % config.valid_every == 0 and acc.is_main_process:
        _validate(lm, acc, config, valid, step, run_dir)
    if config.export_every and step % config.export_every == 0 and acc.is_main_process:
        export_model(acc.unwrap_model(lm), export_dir(config))


def _validate(lm, acc, config: LMTrainConfig, valid, step: int, run_dir: Path) -> dict:
    metrics = evaluate(acc.unwrap_model(lm), valid)
    acc.print(f"step {step} valid: {metrics['bits_per_token']:.4f} bits/token, "
              f"{metrics['bits_per_second']:.1f} bits/s (fixed width {metrics['fixed_bits_per_second']:.0f})")
    _append_jsonl(run_dir / "valid.jsonl", {"step": step, **metrics})
    return metrics


def _finish(lm, acc, config: LMTrainConfig, valid, progress: dict, run_dir: Path, signal: int | None) -> None:
    last = checkpoints.latest_checkpoint(run_dir)
    if last is None or checkpoints.read_state(last)["step"] != progress["step"]:
        save_checkpoint(acc, progress, run_dir, config.keep_checkpoints)
    if signal is not None:
        acc.print(f"stopped by signal {signal} at step {progress['step']}; checkpoint saved, continue with --resume")
        return
    if acc.is_main_process:
        if valid and (not config.valid_every or progress["step"] % config.valid_every):
            _validate(lm, acc, config, valid, progress["step"], run_dir)
        out = export_model(acc.unwrap_model(lm), export_dir(config))
        acc.print(f"exported {out}")


def export_dir(config: LMTrainConfig) -> Path:
    return Path(config.export_dir) if config.export_dir else Path(config.run_dir) / "export"


def export_model(lm: TokenLM, out_dir: Path) -> Path:
    """Write the release of `lm` to `out_dir`, swapped in whole (a reader never sees half of it);
    a model card or other files beside the release are kept."""
    from fsq_audio.checkpoint import RELEASE_FILES
    from fsq_audio.fileio import replace_dir
    from fsq_audio.lm.release import save_lm

    return replace_dir(out_dir, lambda tmp: save_lm(lm, tmp), RELEASE_FILES)


def export_run(run_dir: str, output: str, checkpoint: str | None = None, force: bool = False) -> Path:
    """Export a checkpoint (default: the latest) of an LM run as a release directory."""
    from safetensors.torch import load_file

    out = Path(output)
    if out.exists() and any(out.iterdir()) and not force:
        raise ConfigError(f"{out}: exists (use --force to replace)")
    config = load_run_config(run_dir)
    ckpt = Path(checkpoint) if checkpoint else checkpoints.latest_checkpoint(run_dir)
    if ckpt is None or not (ckpt / "model.safetensors").is_file():
        raise ConfigError(f"{run_dir}: no complete checkpoint to export")
    lm = TokenLM(config.model)
    lm.load_state_dict(load_file(str(ckpt / "model.safetensors")), strict=True)
    return export_model(lm.eval(), out)
