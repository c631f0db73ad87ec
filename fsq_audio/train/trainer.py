"""The training loop: accelerate, checkpoints (periodic, on SIGINT/SIGTERM), resume, logging, export."""

from __future__ import annotations

import math
import signal
import sys
import time
from pathlib import Path

import torch
from accelerate import Accelerator
from accelerate.utils import set_seed
from safetensors.torch import load_file, save_file
from torch.utils.data import DataLoader
from tqdm import tqdm

from fsq_audio.config import TrainConfig, to_dict
from fsq_audio.data.dataset import SegmentDataset, ValidSet
from fsq_audio.errors import ConfigError
from fsq_audio.models.codec import Codec
from fsq_audio.models.discriminators import Discriminator
from fsq_audio.train import checkpoints
from fsq_audio.train.config_io import load_resolved, save_resolved
from fsq_audio.train.ema import EMA
from fsq_audio.train.schedule import lr_lambda
from fsq_audio.train.step import TrainState, build_losses, train_step, validate


class _StopFlag:
    """Set by SIGINT/SIGTERM; the loop checkpoints and exits at the next step boundary."""

    def __init__(self) -> None:
        self.signal: int | None = None
        self._old = {}

    def __enter__(self) -> "_StopFlag":
        for sig in (signal.SIGINT, signal.SIGTERM):
            self._old[sig] = signal.signal(sig, self._handle)
        return self

    def _handle(self, signum, frame) -> None:
        if self.signal is not None:  # second signal: stop now
            raise KeyboardInterrupt
        self.signal = signum

    def __exit__(self, *exc) -> None:
        for sig, old in self._old.items():
            signal.signal(sig, old)


def mixed_precision(config: TrainConfig) -> str:
    if config.mixed_precision == "auto":
        return "bf16" if torch.cuda.is_available() else "no"
    return config.mixed_precision


def start_run(config, run_dir: Path) -> Accelerator:
    """Threads, the Accelerator, the seed, and the resolved config saved in `run_dir` (main process).

    Shared by the codec and LM trainers; `config` is a TrainConfig or an LMTrainConfig.
    """
    if config.threads:
        torch.set_num_threads(config.threads)
    acc = Accelerator(mixed_precision=mixed_precision(config), gradient_accumulation_steps=config.grad_accum,
                      step_scheduler_with_optimizer=False)
    set_seed(config.seed)
    if acc.is_main_process:
        save_resolved(config, run_dir)
    return acc


def check_resume_config(config: TrainConfig, run_dir: Path) -> TrainConfig:
    """On resume, the stored model config wins; a different one is an error (like nanoGPT)."""
    stored = load_resolved(run_dir)
    if to_dict(stored.model) != to_dict(config.model):
        raise ConfigError(f"{run_dir}: model config differs from the run's config.json; "
                          "use a new run_dir or the same model settings")
    return config


def build_data(config: TrainConfig, num_processes: int) -> tuple[DataLoader, list[torch.Tensor]]:
    if not config.data.train:
        raise ConfigError("data.train is empty: give manifests or folders (--set data.train=[DIR])")
    seg = int(config.data.segment_seconds * config.model.sample_rate)
    ds = SegmentDataset(config.data.train, config.model.sample_rate, seg, config.data.min_seconds,
                        config.data.normalize, config.data.cache, config.seed)
    dl = DataLoader(ds, batch_size=config.batch_size, shuffle=False, drop_last=True,
                    num_workers=config.data.num_workers, pin_memory=torch.cuda.is_available())
    valid = ValidSet(config.data.valid, config.model.sample_rate, config.data.valid_items,
                     config.data.valid_seconds) if config.data.valid else None
    clips = [valid[i] for i in range(len(valid))] if valid else []
    return dl, clips


def train(config: TrainConfig, resume: bool = False, init_from: str | None = None) -> Path:
    """Run (or resume) training; returns the run directory."""
    run_dir = Path(config.run_dir)
    checkpoints.remove_stale(run_dir)
    last = checkpoints.latest_checkpoint(run_dir)
    if last is not None and not resume:
        raise ConfigError(f"{run_dir} already holds checkpoints; pass --resume or choose another run_dir")
    if last is not None:
        check_resume_config(config, run_dir)
    acc = start_run(config, run_dir)
    gen, disc = Codec(config.model), Discriminator(config.loss)
    if init_from and last is None:
        _init_generator(gen, init_from)
    opt_g = torch.optim.AdamW(gen.parameters(), config.lr, betas=tuple(config.betas), weight_decay=config.weight_decay)
    opt_d = torch.optim.AdamW(disc.parameters(), config.lr_disc, betas=tuple(config.betas),
                              weight_decay=config.weight_decay)
    sched_g = torch.optim.lr_scheduler.LambdaLR(opt_g, lr_lambda(config))
    sched_d = torch.optim.lr_scheduler.LambdaLR(opt_d, lr_lambda(config))
    train_dl, clips = build_data(config, acc.num_processes)
    gen, disc, opt_g, opt_d, sched_g, sched_d, train_dl = acc.prepare(gen, disc, opt_g, opt_d, sched_g, sched_d, train_dl)
    mel_loss, stft_loss = (m.to(acc.device) for m in build_losses(config))
    state = TrainState(config, acc, gen, disc, opt_g, opt_d, sched_g, sched_d, mel_loss, stft_loss)
    ema = EMA(acc.unwrap_model(gen), config.ema_decay) if config.ema_decay > 0 else None
    progress = {"step": 0, "epoch": 0, "batch_in_epoch": 0}
    if last is not None:
        acc.load_state(str(last))
        progress.update(checkpoints.read_state(last))
        if ema is not None and (last / "ema.safetensors").is_file():
            ema.shadow = load_file(str(last / "ema.safetensors"))
        acc.print(f"resumed from {last} at step {progress['step']}")
    _loop(state, train_dl, clips, ema, progress, run_dir)
    return run_dir


def _init_generator(gen: Codec, release_dir: str) -> None:
    """Start from an exported release (weight norm folded): load it, then re-apply weight norm."""
    from torch.nn.utils import parametrizations, parametrize

    from fsq_audio.nn.layers import remove_weight_norm

    src = Codec.from_pretrained(release_dir)
    if to_dict(src.config) != to_dict(gen.config):
        raise ConfigError(f"{release_dir}: its config differs from the recipe's model config")
    normed = [m for m in gen.modules() if parametrize.is_parametrized(m, "weight")]
    remove_weight_norm(gen)
    gen.load_state_dict(src.state_dict())
    for m in normed:
        parametrizations.weight_norm(m)


def save_checkpoint(state: TrainState, ema: EMA | None, progress: dict, run_dir: Path) -> Path:
    """accelerate save_state into a temporary dir, then an atomic rename (all processes take part)."""
    acc = state.accelerator
    tmp, final = checkpoints.begin(run_dir, progress["step"])
    acc.wait_for_everyone()
    acc.save_state(str(tmp))
    if acc.is_main_process:
        if ema is not None:
            save_file(ema.shadow, str(tmp / "ema.safetensors"))
        checkpoints.commit(tmp, final, dict(progress), state.config.keep_checkpoints)
    acc.wait_for_everyone()
    return final


def _loop(state: TrainState, train_dl, clips, ema: EMA | None, progress: dict, run_dir: Path) -> None:
    cfg, acc = state.config, state.accelerator
    writer = _tensorboard(run_dir) if acc.is_main_process else None
    bar = tqdm(total=cfg.max_steps, initial=progress["step"], disable=not acc.is_main_process, unit="step",
               dynamic_ncols=True, file=sys.stderr)
    audio_per_step = cfg.batch_size * cfg.data.segment_seconds * acc.num_processes * cfg.grad_accum
    t_last, logs = time.perf_counter(), {}
    dataset = train_dl.dataset
    with _StopFlag() as stop:
        while progress["step"] < cfg.max_steps and stop.signal is None:
            dl = acc.skip_first_batches(train_dl, progress["batch_in_epoch"]) if progress["batch_in_epoch"] else train_dl
            if hasattr(dl, "set_epoch"):  # accelerate's loaders pass their own epoch on to the dataset
                dl.set_epoch(progress["epoch"])
            dataset.set_epoch(progress["epoch"])
            for batch in dl:
                # randomness inside a step (stage dropout) is a pure function of (seed, step, process),
                # so a resumed run draws exactly what an uninterrupted one would
                torch.manual_seed(hash((cfg.seed, progress["batch_in_epoch"], progress["epoch"], acc.process_index)))
                out = train_step(state, batch, progress["step"])
                progress["batch_in_epoch"] += 1
                if not acc.sync_gradients:
                    continue
                if ema is not None:
                    ema.update(acc.unwrap_model(state.generator), progress["step"])
                progress["step"] += 1
                for k, v in out.items():
                    logs.setdefault(k, []).append(v)
                bar.update(1)
                if progress["step"] % cfg.log_every == 0:
                    now = time.perf_counter()
                    speed = audio_per_step * cfg.log_every / (now - t_last)
                    t_last = now
                    means = _log(writer, bar, logs, progress["step"], speed)
                    if acc.is_main_process:
                        _append_jsonl(run_dir / "train.jsonl", {"step": progress["step"], **means, "audio_s_per_s": speed})
                    logs = {}
                _periodic(state, ema, progress, run_dir, clips, writer)
                if progress["step"] >= cfg.max_steps or stop.signal is not None:
                    break
            else:
                progress["epoch"] += 1
                progress["batch_in_epoch"] = 0
    bar.close()
    last = checkpoints.latest_checkpoint(run_dir)
    if last is None or checkpoints.read_state(last)["step"] != progress["step"]:
        save_checkpoint(state, ema, progress, run_dir)
    if cfg.export_dir and acc.is_main_process:
        export_generator(state, ema, Path(cfg.export_dir))
    if stop.signal is not None:
        acc.print(f"stopped by signal {stop.signal} at step {progress['step']}; checkpoint saved, "
                  f"continue with --resume")
    if writer is not None:
        writer.close()


def _periodic(state, ema, progress, run_dir, clips, writer) -> None:
    cfg, acc, step = state.config, state.accelerator, progress["step"]
    if cfg.save_every and step % cfg.save_every == 0:
        save_checkpoint(state, ema, progress, run_dir)
    if cfg.valid_every and step % cfg.valid_every == 0 and clips and acc.is_main_process:
        _run_validation(state, ema, clips, step, writer)
    if cfg.export_every and cfg.export_dir and step % cfg.export_every == 0 and acc.is_main_process:
        export_generator(state, ema, Path(cfg.export_dir))


def _run_validation(state, ema, clips, step, writer) -> None:
    cfg = state.config
    gen = _export_model(state, ema)
    stages = sorted({1, cfg.model.num_stages})
    metrics, recon = validate(gen, clips, stages, cfg.model.sample_rate)
    state.accelerator.print(f"step {step} " + " ".join(f"{k}={v:.4f}" for k, v in sorted(metrics.items())))
    _append_jsonl(Path(cfg.run_dir) / "valid.jsonl", {"step": step, **metrics})
    if writer is not None:
        for k, v in metrics.items():
            writer.add_scalar(k, v, step)
        for i, (x, y) in enumerate(list(zip(clips, recon))[:3]):
            writer.add_audio(f"audio/{i}_reconstruction", y.clamp(-1, 1), step, cfg.model.sample_rate)
            if step == cfg.valid_every:
                writer.add_audio(f"audio/{i}_reference", x, step, cfg.model.sample_rate)
            writer.add_figure(f"mel/{i}", _mel_figure(x, y, cfg.model.sample_rate), step)


def _export_model(state: TrainState, ema: EMA | None) -> Codec:
    """A detached copy of the generator (EMA weights when enabled) for validation/export."""
    import copy

    gen = copy.deepcopy(state.accelerator.unwrap_model(state.generator)).float()
    if ema is not None:
        ema.copy_to(gen)
    return gen


def export_generator(state: TrainState, ema: EMA | None, out_dir: Path) -> None:
    """Write the inference release of the current generator to `out_dir` (see `replace_release`)."""
    from fsq_audio.checkpoint import replace_release

    replace_release(_export_model(state, ema), out_dir)


def _append_jsonl(path: Path, row: dict) -> None:
    import json

    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(row) + "\n")


def _log(writer, bar, logs: dict, step: int, speed: float) -> dict:
    means = {k: sum(v) / len(v) for k, v in logs.items()}
    bar.set_postfix({"mel": f"{means.get('spec/mel', math.nan):.3f}", "audio_s/s": f"{speed:.1f}"})
    if writer is not None:
        for k, v in means.items():
            writer.add_scalar(f"train/{k}", v, step)
        writer.add_scalar("train/audio_seconds_per_second", speed, step)
    return means


def _tensorboard(run_dir: Path):
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        return None
    return SummaryWriter(str(run_dir / "tb"))


def _mel_figure(x: torch.Tensor, y: torch.Tensor, sample_rate: int):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from fsq_audio.losses.spectral import MelSpectrogram

    mel = MelSpectrogram(sample_rate, 1024, 256, 80)
    fig, axes = plt.subplots(2, 1, figsize=(8, 4))
    for ax, sig, title in zip(axes, (x, y), ("reference", "reconstruction")):
        ax.imshow(mel(sig[None]).clamp_min(1e-5).log()[0].numpy(), origin="lower", aspect="auto")
        ax.set_title(title)
    fig.tight_layout()
    return fig
