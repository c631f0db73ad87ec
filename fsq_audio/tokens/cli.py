"""`fsq-audio tokenize` and `fsq-audio detokenize`.

Multi-GPU / multi-node: `accelerate launch -m fsq_audio tokenize INPUT -o OUT`; each process
takes the shards k with k % num_processes == process_index, and the main process writes
index.jsonl and meta.json once all are done. OUT must be on a filesystem all nodes share.
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

from fsq_audio.errors import FsqAudioError

if TYPE_CHECKING:
    from fsq_audio.tokens.extract import TokenizeResult

BARRIER_TIMEOUT_HOURS = 48  # processes that finish early wait this long for the others


def add_tokenize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("input", help="audio file, folder (recursive) or manifest (.jsonl, lhotse .jsonl.gz)")
    p.add_argument("-o", "--output", required=True, help="token directory (created; a re-run resumes it)")
    p.add_argument("-m", "--model", help="model name or release directory (default: the shipped model)")
    p.add_argument("-s", "--stages", type=int, help="residual stages to keep (default: all)")
    p.add_argument("--batch-seconds", type=float,
                   help="audio per encoder call, packed from several utterances; on CPU it never changes the "
                        "tokens (default: 8 on CPU, where small batches stay in cache, 1024 on GPU)")
    p.add_argument("--shard-size", type=int, default=2000, help="utterances per shard (default: 2000)")
    p.add_argument("--threads", type=int, default=0,
                   help="CPU encoder workers per process, each on one core; never changes the tokens "
                        "(default: CPU cores / processes on this node)")
    p.add_argument("--io-threads", type=int, default=2, help="threads decoding audio ahead of the encoder (default: 2)")
    p.add_argument("--dtype", choices=("fp32", "bf16"), default="fp32",
                   help="encoder precision: fp32 (default, exact) or bf16 (CUDA only; used only if a probe "
                        "batch gives the fp32 tokens, else fp32)")
    p.add_argument("--cpu", action="store_true", help="run on CPU even if a GPU is available")
    p.add_argument("--max-shards", type=int,
                   help="stop after writing this many shards per process (re-run to continue)")
    p.add_argument("-f", "--force", action="store_true", help="delete the token files already in OUT and start over")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_detokenize_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("tokens",
                   help="token directory (every utterance -> OUT/<id>.wav) or a .npy of shape (stages, frames)")
    p.add_argument("-o", "--output", help="output folder (token directory) or file (.npy; default: beside it as .wav)")
    p.add_argument("-m", "--model", help="model (default: the installed model named in the token directory)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def _partial_state(cpu: bool):
    """accelerate's process state (CPU processes too: torchrun / accelerate launch on CPU machines)."""
    from datetime import timedelta

    import torch
    from accelerate import PartialState

    # accelerate only forms a CPU process group when asked for the CPU; without it, N launched
    # CPU processes would each believe they are the only one and all do every shard
    cpu = cpu or not torch.cuda.is_available()
    state = PartialState(cpu=cpu, timeout=timedelta(hours=BARRIER_TIMEOUT_HOURS))
    launched = int(os.environ.get("WORLD_SIZE", "1"))
    if state.num_processes != launched:
        raise FsqAudioError(f"launched as {launched} processes, but accelerate formed a group of "
                            f"{state.num_processes}; check the launcher's settings")
    return state


def _default_threads() -> int:
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, cores // max(1, int(os.environ.get("LOCAL_WORLD_SIZE", "1"))))


def run_tokenize(args: argparse.Namespace) -> int:
    import torch

    from fsq_audio.models.codec import Codec
    from fsq_audio.tokens.extract import tokenize
    from fsq_audio.tokens.plan import clear

    threads = args.threads or _default_threads()
    torch.set_num_threads(threads)
    state = _partial_state(args.cpu)
    out = Path(args.output)
    if out.exists() and not out.is_dir():
        raise FsqAudioError(f"{out}: exists and is not a directory")
    codec = Codec.from_pretrained(args.model, device=state.device)
    if args.force and state.is_main_process and out.is_dir():
        clear(out)
    state.wait_for_everyone()
    result = tokenize(args.input, out, codec, stages=args.stages, batch_seconds=args.batch_seconds,
                      shard_size=args.shard_size, compute_dtype=args.dtype, threads=threads, io_threads=args.io_threads,
                      max_shards=args.max_shards, progress=not args.quiet and sys.stderr.isatty(),
                      process_index=state.process_index, num_processes=state.num_processes,
                      wait=state.wait_for_everyone)
    if not state.is_main_process:
        return 0
    return report(result, out)


def report(result: TokenizeResult, out: Path) -> int:
    """Print the run's summary and failures; 1 if any input failed."""
    if result.complete:
        print(f"tokenize: {result.num_utterances} utterances, {result.total_frames} frames -> {out} "
              f"(computed in {result.compute_dtype})", file=sys.stderr)
    else:
        print(f"tokenize: stopped with {result.missing_shards} shards still to do; "
              "re-run the same command to continue", file=sys.stderr)
    if result.failures:
        print(f"fsq-audio: {len(result.failures)} files failed:", file=sys.stderr)
        for f in result.failures:
            print(f"  {f['error']}", file=sys.stderr)
        return 1
    return 0


def run_detokenize(args: argparse.Namespace) -> int:
    from fsq_audio.models.codec import Codec
    from fsq_audio.tokens import decode
    from fsq_audio.tokens.shards import load_meta

    src = Path(args.tokens)
    if src.is_dir():
        if not args.output:
            raise FsqAudioError("detokenize of a token directory needs -o OUTPUT_FOLDER")
        meta = load_meta(src)
        codec = decode.codec_for_tokens(meta, args.model)
        return _detokenize_dir(src, Path(args.output), codec, meta, args)
    if not src.is_file():
        raise FsqAudioError(f"{src}: no such file or directory")
    if src.suffix.lower() != ".npy":
        raise FsqAudioError(f"{src}: expected a token directory or a .npy array of shape (stages, frames)")
    dst = Path(args.output) if args.output else src.with_suffix(".wav")
    if dst.is_dir():
        dst = dst / src.with_suffix(".wav").name
    decode.detokenize_array(src, dst, Codec.from_pretrained(args.model), args.force)
    return 0


def _detokenize_dir(src: Path, out: Path, codec, meta: dict, args: argparse.Namespace) -> int:
    from tqdm.auto import tqdm

    from fsq_audio.tokens import decode

    with tqdm(total=int(meta["num_utterances"]), unit="utt", desc="detokenize", file=sys.stderr,
              disable=args.quiet or not sys.stderr.isatty()) as bar:
        failed = decode.detokenize_dir(src, out, codec, args.force, on_done=lambda _: bar.update(1))
    from fsq_audio.commands.codec import report_failures

    return report_failures(failed, int(meta["num_utterances"]), "utterances")
