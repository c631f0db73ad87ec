"""`fsq-audio` command line: compress | decompress | info | train | export | eval | ...

Errors print one line `fsq-audio: error: ...` to stderr and exit 1; batch jobs carry on past
bad files, list them at the end and exit 1.
"""

from __future__ import annotations

import argparse
import contextlib
import importlib
import os
import signal
import sys
from collections.abc import Iterator
from pathlib import Path

from fsq_audio import __version__
from fsq_audio.errors import FsqAudioError

#: subcommand -> (module, help). Each module has add_arguments(parser) and run(args) -> int.
COMMANDS = {
    "compress": ("fsq_audio.commands.codec", "audio file(s) -> .fsqa"),
    "decompress": ("fsq_audio.commands.codec", ".fsqa file(s) -> audio"),
    "info": ("fsq_audio.commands.codec", "show what a .fsqa file or model holds"),
    "train": ("fsq_audio.train.cli", "train a codec from a recipe YAML"),
    "export": ("fsq_audio.train.cli", "export a training run's generator as a release directory"),
    "eval": ("fsq_audio.eval.runner", "objective metrics, baselines and a report"),
    "prepare": ("fsq_audio.data.prepare", "write a manifest for a folder or LibriSpeech"),
    "tokenize": ("fsq_audio.tokens.cli", "extract speech tokens (batched, resumable, multi-GPU)"),
    "detokenize": ("fsq_audio.tokens.cli", "turn token shards back into audio"),
    "lm-train": ("fsq_audio.lm.cli", "train the token language model"),
    "generate": ("fsq_audio.lm.cli", "continue speech with the token LM"),
    "export-onnx": ("fsq_audio.onnx_export", "export encoder/decoder to ONNX"),
}


def fatal(message: str) -> int:
    """Print a one-line error and return the exit code."""
    print(f"fsq-audio: error: {' '.join(str(message).split())}", file=sys.stderr)
    return 1


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The argument parser; only `command`'s module is imported (fast start-up)."""
    parser = argparse.ArgumentParser(prog="fsq-audio", description="Neural speech codec and speech tokenizer (FSQ).")
    parser.add_argument("--version", action="version", version=f"fsq-audio {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, (module, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        if name != command:
            continue
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name and module.startswith(exc.name):
                p.description = f"{help_text} (not available in this version of fsq_audio)"
                p.set_defaults(_missing=f"'{name}' is not available in this version of fsq_audio")
                continue
            raise
        suffix = name.replace("-", "_")
        getattr(mod, f"add_{suffix}_arguments", getattr(mod, "add_arguments", None))(p)
        p.set_defaults(_run=getattr(mod, f"run_{suffix}", getattr(mod, "run", None)))
    return parser


@contextlib.contextmanager
def sigterm_as_interrupt() -> Iterator[None]:
    """Turn SIGTERM into KeyboardInterrupt while a command runs, so that temporary files are removed
    (atomic outputs) instead of being left behind by the default handler's immediate exit."""
    def handler(signum, frame):  # noqa: ARG001
        raise KeyboardInterrupt

    try:
        old = signal.signal(signal.SIGTERM, handler)
    except ValueError:  # not the main thread: leave signals alone
        yield
        return
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, old)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    command = next((a for a in argv if not a.startswith("-")), None)
    parser = build_parser(command if command in COMMANDS else None)
    args = parser.parse_args(argv)
    if getattr(args, "_missing", None):
        return fatal(args._missing)
    if not getattr(args, "_run", None):
        parser.print_help()
        return 2
    threads = getattr(args, "threads", None)
    if threads is not None and threads < 0:
        return fatal(f"--threads must be >= 0 (0: torch's default), got {threads}")
    if threads:
        import torch

        torch.set_num_threads(threads)
    try:
        with sigterm_as_interrupt():
            return int(args._run(args) or 0)
    except FsqAudioError as exc:
        return fatal(str(exc))
    except KeyboardInterrupt:
        return fatal("interrupted")
    except BrokenPipeError:
        return 1
    except OSError as exc:
        name = f"{exc.filename}: " if exc.filename else ""
        return fatal(f"{name}{exc.strerror or exc}")


if __name__ == "__main__":
    sys.exit(main())
