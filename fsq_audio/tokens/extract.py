"""Batched, resumable token extraction: audio files -> token shards.

Every utterance is cut into the codec's canonical encode windows (`Codec.encode`): all have
the same length, so windows of consecutive utterances are packed into fixed-size batches with
no padding beyond each utterance's last partial window (sorting by length would gain nothing).
A window's context never reaches past its own samples, so tokens do not depend on batch
mates, input order or process count.

Numerics (what makes the tokens bit-exact, not just close):
- CPU: every window is encoded alone, in fp32, on one intra-op thread, by a pool of worker
  threads (`encode_pool`). Torch's intra-op threads and batch shapes change the floating-point
  reduction order, which flips the rare code lying on an FSQ rounding boundary; running each
  window the same way makes tokens independent of --threads and --batch-seconds. They equal
  `Codec.encode(wav, max_windows=1)` and the .fsqa indices computed on one thread.
- GPU: windows are batched (speed), fp32 with TF32 off and deterministic cuDNN. Tokens are
  reproducible for a given GPU model and --batch-seconds. `compute_dtype="bf16"` uses bf16
  autocast only if a probe batch gives exactly the fp32 tokens; otherwise it warns and falls
  back to fp32 (bf16's 8-bit mantissa moves latents across rounding boundaries, so expect
  the fallback).
"""
from __future__ import annotations

import contextlib
import math
import sys
import time
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from itertools import islice
from pathlib import Path

import numpy as np
import torch

from fsq_audio.api import iter_model_rate
from fsq_audio.errors import AudioError, ConfigError, FsqAudioError
from fsq_audio.models.codec import Codec
from fsq_audio.tokens import shards as fmt
from fsq_audio.tokens.plan import Plan, check_plan, collect_rows, merge, remove_stale_parts


def load_utterance(row: dict, sample_rate: int) -> np.ndarray:
    """Mono float32 samples of a row's file at `sample_rate`, read as `compress_file` reads them."""
    blocks, _ = iter_model_rate(row["path"], sample_rate)
    parts = list(blocks)
    if not parts:
        raise AudioError(f"{row['path']}: holds no audio samples")
    return np.concatenate(parts)


def prefetch(fn: Callable[[dict], np.ndarray], rows: list[dict],
             threads: int) -> Iterator[tuple[dict, np.ndarray | None, str]]:
    """Yield (row, fn(row) or None, error) in order, with up to 2 * threads + 2 loads in flight."""
    pool = ThreadPoolExecutor(max(1, threads), thread_name_prefix="fsq-load")
    it = iter(rows)
    pending = deque((r, pool.submit(fn, r)) for r in islice(it, 2 * threads + 2))
    try:
        while pending:
            row, fut = pending.popleft()
            for nxt in islice(it, 1):
                pending.append((nxt, pool.submit(fn, nxt)))
            try:
                yield row, fut.result(), ""
            except (FsqAudioError, OSError) as exc:
                msg = str(exc)
                yield row, None, msg if str(row["path"]) in msg else f"{row['path']}: {msg}"
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class WindowBatcher:
    """Packs the encode windows of consecutive utterances into batches of `batch_windows`.

    With a `pool` (CPU), each window of a batch is encoded alone (batch of one, one intra-op
    thread) by one of the pool's workers: the tokens are then bit-identical for any number of
    workers and any batch size, because every window always runs the same single-threaded
    kernels (intra-op threads and batch shapes change the floating-point reduction order,
    which flips the rare code that lies on a rounding boundary). Without a pool (GPU) the
    whole batch is one encoder call.

    Args:
        codec: inference-ready codec.
        stages: residual stages to keep.
        batch_windows: windows per encoder call, or per round of the pool.
        dtype: numpy dtype of the stored tokens.
        pool: CPU workers (see `encode_pool`), or None for batched calls.
        autocast: run the encoder under bf16 autocast (CUDA).
    """

    def __init__(self, codec: Codec, stages: int, batch_windows: int, dtype: np.dtype,
                 pool: ThreadPoolExecutor | None = None, autocast: bool = False):
        self.codec, self.stages, self.batch_windows = codec, stages, max(1, batch_windows)
        self.dtype, self.pool, self.autocast = dtype, pool, autocast
        self._pending: list[np.ndarray] = []
        self._count = 0
        self._out: list[np.ndarray] = []
        self._utts: list[tuple[int, int]] = []  # (windows, frames) per utterance

    def windows(self, wav: np.ndarray) -> np.ndarray:
        """(n_win, L) views of `wav`'s canonical encode windows (as `Codec._encode_windows`)."""
        hop, win, ctx = self.codec.hop_length, self.codec.config.encode_window_frames, self.codec.encoder_context
        n_frames = max(1, math.ceil(len(wav) / hop))
        n_win = math.ceil(n_frames / win)
        padded = np.zeros((n_win * win + 2 * ctx) * hop, dtype=np.float32)
        padded[ctx * hop: ctx * hop + len(wav)] = wav
        views = np.lib.stride_tricks.sliding_window_view(padded, self.codec.encode_window_samples)
        return views[:: win * hop][:n_win]

    def add(self, wav: np.ndarray) -> None:
        """Queue one utterance (mono samples at the codec's rate); encodes every full batch."""
        views = self.windows(wav)
        self._utts.append((len(views), max(1, math.ceil(len(wav) / self.codec.hop_length))))
        i = 0
        while i < len(views):
            take = min(self.batch_windows - self._count, len(views) - i)
            self._pending.append(views[i: i + take])
            self._count += take
            i += take
            if self._count == self.batch_windows:
                self._flush()

    def _flush(self) -> None:
        if not self._count:
            return
        batch = torch.from_numpy(np.concatenate(self._pending)).unsqueeze(1)  # (N, 1, L)
        self._pending, self._count = [], 0
        self._out.append(self.encode(batch).cpu().numpy().astype(self.dtype))

    def encode(self, batch: torch.Tensor) -> torch.Tensor:
        """(N, 1, L) windows -> (N, S, encode_window_frames) indices."""
        if self.pool is not None:
            return torch.cat(list(self.pool.map(lambda w: self.codec.encode_windows(w[None], self.stages), batch)))
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.autocast):
            return self.codec.encode_windows(batch, self.stages)

    def finish(self) -> list[np.ndarray]:
        """Encode what is queued and return (S, frames) tokens per utterance, in `add` order."""
        self._flush()
        S, win = self.stages, self.codec.config.encode_window_frames
        flat = np.concatenate(self._out) if self._out else np.zeros((0, S, win), dtype=self.dtype)
        result, start = [], 0
        for n_win, n_frames in self._utts:
            part = flat[start: start + n_win]
            result.append(np.ascontiguousarray(part.transpose(1, 0, 2).reshape(S, -1)[:, :n_frames]))
            start += n_win
        self._out, self._utts = [], []
        return result


@dataclass
class Progress:
    """Audio hours done, shown as a tqdm bar (main process, terminal only)."""

    total_hours: float
    enabled: bool = True
    done: float = 0.0
    _bar: object = field(default=None, repr=False)
    _t0: float = field(default_factory=time.perf_counter, repr=False)

    def __post_init__(self) -> None:
        from tqdm.auto import tqdm

        self._bar = tqdm(total=round(self.total_hours, 4), unit="h", desc="tokenize", file=sys.stderr,
                         disable=not self.enabled or None, dynamic_ncols=True,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.3f}/{total:.3f} h "
                                    "[{elapsed}<{remaining}{postfix}]")

    def update(self, seconds: float) -> None:
        self.done += seconds / 3600
        self._bar.update(seconds / 3600)
        wall = time.perf_counter() - self._t0
        self._bar.set_postfix_str(f"{self.done / wall * 3600:.0f} audio h/h" if wall > 0 else "", refresh=False)

    def close(self) -> None:
        self._bar.close()


def encode_shard(batcher: WindowBatcher, rows: list[dict], io_threads: int,
                 progress: Progress) -> tuple[fmt.Shard, list[dict]]:
    """Tokens of one shard's rows (unreadable rows left out) and {"id", "path", "error"} of those."""
    ids, failures = [], []
    sr = batcher.codec.sample_rate
    for row, wav, error in prefetch(lambda r: load_utterance(r, sr), rows, io_threads):
        if wav is None:
            failures.append({"id": str(row["id"]), "path": str(row["path"]), "error": error})
            continue
        batcher.add(wav)
        ids.append(str(row["id"]))
        progress.update(len(wav) / sr)
    return fmt.Shard.build(ids, batcher.finish(), batcher.stages, batcher.dtype), failures


def write_shard(root: Path, k: int, shard: fmt.Shard, failures: list[dict]) -> None:
    """Write shard `k` (its failure list first, so a finished shard always has its list)."""
    if failures:
        fmt.write_jsonl(root / fmt.failed_name(k), failures)
    else:
        (root / fmt.failed_name(k)).unlink(missing_ok=True)
    fmt.write_shard(root / fmt.shard_name(k), shard)


@contextlib.contextmanager
def encode_pool(device: torch.device, workers: int) -> Iterator[ThreadPoolExecutor | None]:
    """CPU: `workers` threads that each run the encoder with one intra-op thread (torch's
    thread count is 1 meanwhile, then restored). CUDA: None (batched calls)."""
    if device.type != "cpu":
        yield None
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    pool = ThreadPoolExecutor(max(1, workers), thread_name_prefix="fsq-encode",
                              initializer=torch.set_num_threads, initargs=(1,))
    try:
        yield pool
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        torch.set_num_threads(saved)


@contextlib.contextmanager
def exact_numerics(device: torch.device) -> Iterator[None]:
    """fp32 without TF32 on CUDA (TF32 convolutions would change tokens); no-op on CPU."""
    if device.type != "cuda":
        yield
        return
    saved = (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32, torch.backends.cudnn.deterministic)
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.deterministic = True
    try:
        yield
    finally:
        (torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32,
         torch.backends.cudnn.deterministic) = saved


def choose_autocast(batcher: WindowBatcher, compute_dtype: str, probe_rows: list[dict]) -> bool:
    """Whether bf16 autocast keeps the tokens of a probe batch identical to fp32 (CUDA only)."""
    if compute_dtype == "fp32":
        return False
    if compute_dtype != "bf16":
        raise ConfigError(f"--dtype must be fp32 or bf16, got {compute_dtype!r}")
    if batcher.codec.device.type != "cuda":
        raise ConfigError("--dtype bf16 needs a CUDA device; on CPU tokens are computed in fp32")
    wavs = []
    for row in probe_rows:
        with contextlib.suppress(FsqAudioError, OSError):
            wavs.append(load_utterance(row, batcher.codec.sample_rate))
    if not wavs:
        return False
    batch = torch.from_numpy(np.concatenate([batcher.windows(w) for w in wavs])[: batcher.batch_windows]).unsqueeze(1)
    exact = batcher.encode(batch)
    batcher.autocast = True
    same = torch.equal(batcher.encode(batch), exact)
    batcher.autocast = False
    if not same:
        print("fsq-audio: warning: bf16 changes tokens on a probe batch; computing in fp32", file=sys.stderr)
    return same


@dataclass
class TokenizeResult:
    """What a `tokenize` call did; the totals are filled in by the process that merged."""

    complete: bool
    shards_written: int
    missing_shards: int
    hours: float
    compute_dtype: str
    num_utterances: int = 0
    total_frames: int = 0
    failures: list[dict] = field(default_factory=list)


#: default audio seconds per encoder call: (CPU, CUDA)
DEFAULT_BATCH_SECONDS = (8.0, 1024.0)


def batch_windows_for(codec: Codec, batch_seconds: float) -> int:
    """Encode windows per batch for about `batch_seconds` of audio (at least 1)."""
    if batch_seconds <= 0:
        raise ConfigError(f"--batch-seconds must be > 0, got {batch_seconds}")
    return max(1, round(batch_seconds * codec.frame_rate / codec.config.encode_window_frames))


def check_stages(codec: Codec, stages: int | None) -> int:
    """The stage count to keep: all by default, else 1..num_stages."""
    if stages is None:
        return codec.num_stages
    if not 1 <= stages <= codec.num_stages:
        raise ConfigError(f"--stages must be in 1..{codec.num_stages}, got {stages}")
    return stages


def tokenize(source: str | Path, out: str | Path, codec: Codec, stages: int | None = None,
             batch_seconds: float | None = None, shard_size: int = 2000, compute_dtype: str = "fp32",
             threads: int | None = None, io_threads: int = 2, max_shards: int | None = None, progress: bool = False,
             process_index: int = 0, num_processes: int = 1, wait: Callable[[], None] = lambda: None) -> TokenizeResult:
    """Tokenize a file, folder or manifest into shards under `out` (resumable).

    Process `process_index` of `num_processes` encodes shards k with k % num_processes ==
    process_index that do not exist yet; `wait` is a barrier across processes (accelerate's
    `wait_for_everyone`). Process 0 then writes index.jsonl and meta.json if all shards exist.

    Args:
        source: audio file, folder (scanned recursively) or manifest (see `load_rows`).
        out: token directory (created).
        codec: inference-ready codec on the device to use.
        stages: residual stages to keep (default: all).
        batch_seconds: audio per encoder call, rounded to whole encode windows (default:
            DEFAULT_BATCH_SECONDS for the codec's device). It never changes the tokens.
        shard_size: utterances per shard.
        compute_dtype: "fp32" (default) or "bf16" (CUDA, kept only if tokens stay identical).
        threads: CPU encoder workers, each running windows on one intra-op thread (default:
            torch's thread count); never changes the tokens. Unused on GPU.
        io_threads: threads decoding and resampling audio ahead of the encoder.
        max_shards: stop after writing this many shards in this process (a re-run continues).
        progress: show a progress bar in audio hours (process 0).
    """
    root = Path(out)
    root.mkdir(parents=True, exist_ok=True)
    n_stages = check_stages(codec, stages)
    rows, scan_failures = collect_rows(source, io_threads)
    if not rows and not scan_failures:
        raise AudioError(f"{source}: no audio files found")
    plan = Plan.from_rows(rows, shard_size)
    info = model_info(codec, n_stages)
    check_plan(root, plan.fingerprint(info["model_id"], n_stages), write=process_index == 0)
    wait()
    mine = [k for k in range(process_index, plan.num_shards, num_processes)
            if not (root / fmt.shard_name(k)).exists()]
    remove_stale_parts(root, mine)
    todo = mine[:max_shards] if max_shards is not None else mine
    seconds = DEFAULT_BATCH_SECONDS[codec.device.type == "cuda"] if batch_seconds is None else batch_seconds
    workers = threads or torch.get_num_threads()
    bar = Progress(sum(float(r.get("duration") or 0.0) for k in todo for r in plan.shard_rows(k)) / 3600,
                   enabled=progress and process_index == 0)
    with exact_numerics(codec.device), encode_pool(codec.device, workers) as pool:
        n_batch = max(batch_windows_for(codec, seconds), 2 * workers if pool is not None else 1)
        batcher = WindowBatcher(codec, n_stages, n_batch, np.dtype(info["dtype"]), pool)
        batcher.autocast = bool(todo) and choose_autocast(batcher, compute_dtype, plan.shard_rows(todo[0])[:8])
        try:
            for k in todo:
                write_shard(root, k, *encode_shard(batcher, plan.shard_rows(k), io_threads, bar))
        finally:
            bar.close()
    info["compute_dtype"] = "bf16" if batcher.autocast else "fp32"
    result = TokenizeResult(False, len(todo), len(mine) - len(todo), bar.done, info["compute_dtype"])
    wait()
    if process_index == 0:
        merged = merge(root, plan, info, scan_failures)
        result.complete, result.missing_shards = merged["complete"], merged["missing_shards"]
        result.failures = merged["failures"]
        result.num_utterances, result.total_frames = merged["num_utterances"], merged["total_frames"]
    return result


def model_info(codec: Codec, stages: int) -> dict:
    """The codec facts meta.json records."""
    return {"model_id": codec.model_id, "frame_rate": codec.frame_rate, "sample_rate": codec.sample_rate,
            "hop_length": codec.hop_length, "stages": stages, "codebook_size": codec.codebook_size,
            "levels": list(codec.config.levels), "dtype": fmt.token_dtype(codec.codebook_size).name,
            "compute_dtype": "fp32"}
