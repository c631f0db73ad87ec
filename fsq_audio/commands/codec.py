"""compress / decompress / info subcommands."""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from fsq_audio import audio, bitstream
from fsq_audio.errors import FsqAudioError


def _common(p: argparse.ArgumentParser) -> None:
    p.add_argument("-o", "--output", help="output file (one input) or folder (several inputs / a folder)")
    p.add_argument("-f", "--force", action="store_true", help="overwrite existing outputs")
    p.add_argument("--threads", type=int, default=0, help="CPU threads (default: torch's choice)")
    p.add_argument("-q", "--quiet", action="store_true", help="no progress bar")


def add_compress_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help="audio files or folders (wav, flac, ogg/opus, ...; any rate, any channels)")
    p.add_argument("-m", "--model", help="model name or release directory (default: the shipped model)")
    g = p.add_mutually_exclusive_group()
    g.add_argument("-s", "--stages", type=int, help="residual stages to keep (default: all)")
    g.add_argument("-b", "--bitrate", type=float, help="target kbps: the most stages that fit")
    p.add_argument("--entropy", choices=("fixed", "lm"), default=None,
                   help="fixed: fixed-width codes (default); lm: arithmetic-code them with a token LM's "
                        "next-token probabilities (smaller files, slower; the LM is needed to decompress)")
    p.add_argument("--lm", help="token LM for --entropy lm (directory or installed name; default: the first "
                                "installed LM trained on the model; giving --lm implies --entropy lm)")
    _common(p)


def add_decompress_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("inputs", nargs="+", help=".fsqa files or folders")
    p.add_argument("-m", "--model", help="model (default: the model named in the stream, if installed)")
    p.add_argument("-r", "--sample-rate", type=int, help="output sample rate (default: the original's)")
    p.add_argument("--lm", help="token LM of entropy-coded streams (directory or installed name; default: "
                                "the installed LM whose identity the stream names)")
    _common(p)


def add_info_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("path", help=".fsqa file or model directory/name")
    p.add_argument("--json", action="store_true", help="print JSON")


def plan_outputs(inputs: list[str], output: str | None, suffixes: tuple[str, ...], new_suffix: str) -> list[tuple[Path, Path]]:
    """(input, output) pairs: one input -> file; several inputs or folders -> mirrored in a folder."""
    pairs: list[tuple[Path, Path]] = []
    single = len(inputs) == 1 and not Path(inputs[0]).is_dir()
    for item in inputs:
        root = Path(item)
        if root.is_dir():
            files = sorted(p for p in root.rglob("*") if p.is_file() and p.suffix.lower() in suffixes)
            if not files:
                raise FsqAudioError(f"{root}: no {'/'.join(suffixes)} files found")
            for f in files:
                rel = f.relative_to(root).with_suffix(new_suffix)
                pairs.append((f, (Path(output) / rel) if output else f.with_suffix(new_suffix)))
        elif single:
            pairs.append((root, Path(output) if output else root.with_suffix(new_suffix)))
        else:
            pairs.append((root, (Path(output) / root.with_suffix(new_suffix).name) if output else root.with_suffix(new_suffix)))
    outs = [o for _, o in pairs]
    if len(set(outs)) != len(outs):
        raise FsqAudioError("several inputs would write the same output file; use folders")
    return pairs


def _batch(pairs: list[tuple[Path, Path]], job, quiet: bool, verb: str) -> int:
    from tqdm import tqdm

    failed = []
    bar = tqdm(pairs, unit="file", disable=quiet or len(pairs) < 2, desc=verb, file=sys.stderr)
    for src, dst in bar:
        try:
            job(src, dst)
        except (FsqAudioError, OSError) as exc:  # OSError: e.g. an output folder that cannot be made
            text = str(exc) if isinstance(exc, FsqAudioError) else _os_error(exc)
            msg = " ".join((text if str(src) in text else f"{src}: {text}").split())  # one line per file
            failed.append(msg)
            if len(pairs) == 1:
                raise FsqAudioError(msg) from None
            tqdm.write(f"fsq-audio: error: {msg}", file=sys.stderr)
    return report_failures(failed, len(pairs), "files")


def report_failures(failed: list[str], total: int, what: str) -> int:
    """Print the one-line reasons of a batch job's failures; the exit status (1 if any failed)."""
    if not failed:
        return 0
    print(f"fsq-audio: {len(failed)} of {total} {what} failed:", file=sys.stderr)
    for msg in failed:
        print(f"  {msg}", file=sys.stderr)
    return 1


def _os_error(exc: OSError) -> str:
    name = f"{exc.filename}: " if exc.filename else ""
    return " ".join(f"{name}{exc.strerror or exc}".split())


def _lm_coder(codec, name: str | None, codec_id: str, lm_id: str | None, missing: str):
    """The LM entropy coder: `name` (directory or installed name), else the installed LM trained on
    `codec_id` (with identity `lm_id` when given); FsqAudioError(`missing`) when there is none."""
    from fsq_audio.lm.entropy import LMEntropyCoder
    from fsq_audio.lm.release import find_lm, resolve_lm

    path = resolve_lm(name) if name is not None else find_lm(codec_id, lm_id)
    if path is None:
        raise FsqAudioError(missing)
    return LMEntropyCoder.from_pretrained(path, codec)


def run_compress(args: argparse.Namespace) -> int:
    from fsq_audio.api import compress_file
    from fsq_audio.models.codec import Codec

    if args.bitrate is not None and not (math.isfinite(args.bitrate) and args.bitrate > 0):
        raise FsqAudioError(f"--bitrate must be a positive number of kbps, got {args.bitrate}")
    if args.entropy == "fixed" and args.lm:
        raise FsqAudioError("--lm is for --entropy lm; drop one of them")
    pairs = plan_outputs(args.inputs, args.output, audio.AUDIO_EXTENSIONS, ".fsqa")
    codec = Codec.from_pretrained(args.model)
    stages = args.stages
    if args.bitrate is not None:
        stages = codec.stages_for_bitrate(args.bitrate * 1000)
    coder = None
    if args.entropy == "lm" or args.lm:
        coder = _lm_coder(codec, args.lm, codec.model_id, None,
                          f"--entropy lm: no installed token LM was trained on {codec.model_id}; "
                          f"pass --lm DIR (train one with fsq-audio lm-train)")
    return _batch(pairs, lambda s, d: compress_file(s, d, codec, stages, args.force, coder), args.quiet, "compress")


def run_decompress(args: argparse.Namespace) -> int:
    from fsq_audio.api import decompress_file
    from fsq_audio.models.codec import Codec

    pairs = plan_outputs(args.inputs, args.output, (".fsqa",), ".wav")
    codec = Codec.from_pretrained(args.model) if args.model else None
    coders: dict = {}  # one LM load per distinct LM among the inputs

    def job(src: Path, dst: Path) -> None:
        coder = None
        if src.is_file():  # decompress_file reports missing and malformed inputs
            header = bitstream.read_header(src)
            if header.entropy == "lm":
                if header.lm_id not in coders:
                    coders[header.lm_id] = _lm_coder(
                        codec, args.lm, header.model_id, header.lm_id,
                        f"{src}: entropy-coded with LM {header.lm_id}, which is not installed; pass --lm DIR")
                coder = coders[header.lm_id]
        decompress_file(src, dst, codec, args.force, args.sample_rate, coder)

    return _batch(pairs, job, args.quiet, "decompress")


def stream_info(path: str) -> dict:
    """Facts about a .fsqa file, for `info`."""
    header = bitstream.read_header(path)
    size = Path(path).stat().st_size
    duration = header.samples / header.sample_rate if header.sample_rate else 0.0
    frame_rate = header.frames / duration if duration else 0.0
    return {
        "file": path, "model": header.model_id, "duration_s": round(header.duration, 3),
        "frames": header.frames, "stages": header.stages, "levels": header.levels,
        "codebook_size": header.codebook_size, "entropy": header.entropy,
        "original": f"{header.orig_sample_rate} Hz, {header.orig_channels} ch, {header.orig_samples} samples",
        "bytes": size, "bitrate_kbps": round(8 * size / duration / 1000, 3) if duration else None,
        "payload_kbps": round(8 * header.payload_bytes / duration / 1000, 3) if duration else None,
        "frame_rate": round(frame_rate, 3),
    }


def model_info(path: str) -> dict:
    from fsq_audio.models.codec import Codec

    codec = Codec.from_pretrained(path)
    return {
        "model": codec.model_id, "sample_rate": codec.sample_rate, "frame_rate": codec.frame_rate,
        "levels": codec.config.levels, "codebook_size": codec.codebook_size, "stages": codec.num_stages,
        "bitrates_kbps": [round(codec.bitrate(s) / 1000, 3) for s in range(1, codec.num_stages + 1)],
        "decoder": codec.config.decoder, "parameters": sum(p.numel() for p in codec.parameters()),
    }


def run_info(args: argparse.Namespace) -> int:
    p = Path(args.path)
    data = stream_info(args.path) if p.is_file() else model_info(args.path)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for k, v in data.items():
            print(f"{k:>14}: {v}")
    return 0
