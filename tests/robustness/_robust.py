"""Helpers shared by the robustness tests: run the CLI in-process or as a real process, check errors."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from fsq_audio.cli import main

REPO = Path(__file__).resolve().parents[2]
PREFIX = "fsq-audio: error: "


def run(capsys, *argv) -> tuple[int, str, str]:
    """`fsq_audio.cli.main(argv)` in this process: (exit code, stdout, stderr)."""
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def run_process(*argv, timeout: float = 300, cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """`python -m fsq_audio ARGV` as a real process (text output captured)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.run([sys.executable, "-m", "fsq_audio", *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=timeout, cwd=cwd)


def assert_one_line_error(code: int, err: str, *needles: str) -> str:
    """Exit 1 and stderr is exactly one line 'fsq-audio: error: ...' holding every needle (no traceback)."""
    lines = err.splitlines()
    assert code == 1, err
    assert len(lines) == 1, err
    assert lines[0].startswith(PREFIX), err
    assert "Traceback" not in err
    for needle in needles:
        assert needle in lines[0], (needle, lines[0])
    return lines[0]


def leftovers(folder: Path) -> list[str]:
    """Temporary files (atomic writes in progress) anywhere below `folder`."""
    return sorted(p.name for p in folder.rglob("*") if p.name.endswith(".part") or p.name.startswith(".tmp-"))
