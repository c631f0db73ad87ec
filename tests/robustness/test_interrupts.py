"""SIGINT / SIGTERM while working (issue 9, interrupted work): no partial outputs are left behind.

Each test starts `python -m fsq_audio ...` as a real process, waits until it is visibly busy
(input file open, temporary output present, first shard or checkpoint written), sends the signal
and checks the folders afterwards. Linux only (uses /proc to see open files).
"""

from __future__ import annotations

import math
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _robust import PREFIX, REPO, leftovers, run

from fsq_audio import Codec, bitstream
from fsq_audio.bitstream import StreamHeader

pytestmark = pytest.mark.skipif(not Path("/proc/self/fd").is_dir(), reason="needs /proc")


def spawn(*argv) -> subprocess.Popen:
    """`python -m fsq_audio ARGV` with SIGINT at its default (a parent may have it ignored)."""
    env = {**os.environ, "PYTHONPATH": str(REPO), "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-m", "fsq_audio", *map(str, argv)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=env,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))


def wait_for(proc: subprocess.Popen, condition: Callable[[], bool], timeout: float = 240) -> None:
    deadline = time.time() + timeout
    while not condition():
        if proc.poll() is not None:
            out, err = proc.communicate()
            pytest.fail(f"finished (exit {proc.returncode}) before it could be interrupted:\n{err[-2000:]}")
        if time.time() > deadline:
            proc.kill()
            pytest.fail("never got busy")
        time.sleep(0.02)


def has_open(proc: subprocess.Popen, path: Path) -> bool:
    """Whether the process holds `path` open."""
    fd_dir = Path(f"/proc/{proc.pid}/fd")
    try:
        return any(os.readlink(fd_dir / fd) == str(path) for fd in os.listdir(fd_dir))
    except OSError:
        return False


def interrupt(proc: subprocess.Popen, sig: int, timeout: float = 120) -> tuple[int, str]:
    proc.send_signal(sig)
    _, err = proc.communicate(timeout=timeout)
    return proc.returncode, err


def long_wav(path: Path, seconds: int, rate: int = 16000) -> Path:
    block = (0.1 * np.random.default_rng(0).standard_normal(rate * 10)).astype(np.float32)
    with sf.SoundFile(str(path), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for _ in range(seconds // 10):
            f.write(block)
    return path


SIGINT = pytest.param(signal.SIGINT, id="SIGINT")
SIGTERM = pytest.param(signal.SIGTERM, id="SIGTERM")
SLOW_SIGINT = pytest.param(signal.SIGINT, id="SIGINT", marks=pytest.mark.slow)
SLOW_SIGTERM = pytest.param(signal.SIGTERM, id="SIGTERM", marks=pytest.mark.slow)


@pytest.mark.parametrize("sig", [SIGINT, SLOW_SIGTERM])
def test_compress_interrupted(tmp_path: Path, tiny_model_dir: Path, sig: int) -> None:
    src = long_wav(tmp_path / "long.wav", 900, rate=8000)  # resampled on the way in: seconds of work
    out = tmp_path / "out" / "long.fsqa"
    proc = spawn("compress", src, "-o", out, "-m", tiny_model_dir, "--threads", "1", "-q")
    wait_for(proc, lambda: has_open(proc, src))
    time.sleep(0.3)  # well into the encoding
    code, err = interrupt(proc, sig)
    assert code == 1 and err.strip().splitlines() == [PREFIX + "interrupted"], err
    assert not out.exists() and not leftovers(tmp_path)


def long_stream(path: Path, model_dir: Path, seconds: int) -> Path:
    """A valid .fsqa of `seconds` of (random-token) audio for the model, made without encoding."""
    codec = Codec.from_pretrained(str(model_dir))
    samples = seconds * codec.sample_rate
    frames = math.ceil(samples / codec.hop_length)
    header = StreamHeader(model_id=codec.model_id, sample_rate=codec.sample_rate, frames=frames, stages=1,
                          levels=list(codec.config.levels), bits_per_code=codec.bits_per_code, samples=samples,
                          orig_sample_rate=44100, orig_samples=seconds * 44100, orig_channels=2)
    idx = np.random.default_rng(0).integers(0, codec.codebook_size, (1, frames))
    path.write_bytes(bitstream.encode(header, idx))
    return path


@pytest.mark.parametrize("sig", [SLOW_SIGINT, SIGTERM])
def test_decompress_interrupted(tmp_path: Path, tiny_model_dir: Path, sig: int) -> None:
    src = long_stream(tmp_path / "long.fsqa", tiny_model_dir, 1800)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    proc = spawn("decompress", src, "-o", out_dir / "long.wav", "-m", tiny_model_dir, "--threads", "1", "-q")
    wait_for(proc, lambda: bool(leftovers(out_dir)))  # the temporary output is being written
    time.sleep(0.3)
    code, err = interrupt(proc, sig)
    assert code == 1 and err.strip().splitlines() == [PREFIX + "interrupted"], err
    assert not list(out_dir.iterdir()), list(out_dir.iterdir())


def _clip_folder(folder: Path, files: int, seconds: int) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(files):
        sf.write(folder / f"utt{i:02d}.wav", (0.1 * rng.standard_normal(16000 * seconds)).astype(np.float32), 16000)
    return folder


@pytest.mark.parametrize("sig", [SIGINT, SLOW_SIGTERM])
def test_tokenize_interrupted_then_resumed(capsys, tmp_path: Path, tiny_model_dir: Path, sig: int) -> None:
    from fsq_audio.tokens.shards import read_shard

    src = _clip_folder(tmp_path / "clips", 5, 20)
    out = tmp_path / "tokens"
    argv = ["tokenize", src, "-o", out, "-m", tiny_model_dir, "--shard-size", "1", "--threads", "1", "-q"]
    proc = spawn(*argv)
    wait_for(proc, lambda: (out / "shard-00000.npz").exists())
    code, err = interrupt(proc, sig)
    assert code == 1 and PREFIX + "interrupted" in err and "Traceback" not in err, err
    assert not leftovers(out) and not (out / "meta.json").exists()
    done = sorted(out.glob("shard-*.npz"))
    assert 1 <= len(done) < 5
    for shard in done:
        assert len(read_shard(shard)) == 1  # every shard there is whole
    code, _, err = run(capsys, *argv)  # the re-run (in this process) finishes the job
    assert code == 0, err
    assert len(list(out.glob("shard-*.npz"))) == 5 and (out / "meta.json").is_file() and not leftovers(out)


def _train_data(folder: Path) -> Path:
    folder.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        t = np.arange(16000) / 16000
        x = 0.3 * np.sin(2 * np.pi * (120 + 40 * i) * t) + 0.01 * rng.standard_normal(len(t))
        sf.write(folder / f"utt{i}.wav", x.astype(np.float32), 16000)
    return folder


def _train_argv(run: Path, data: Path, *sets: str) -> list:
    argv = ["train", REPO / "recipes" / "tiny.yaml", "--set", f"run_dir={run}", "--set", f"data.train=[{data}]",
            "--set", "valid_every=0", "--set", "save_every=2", "--set", "keep_checkpoints=2", "--threads", "1"]
    return argv + [x for s in sets for x in ("--set", s)]


def _assert_only_complete_checkpoints(run: Path) -> list[Path]:
    from fsq_audio.train import checkpoints

    root = run / "checkpoints"
    for p in root.iterdir():
        assert p.name.startswith(("step-", ".tmp-")), p
        if p.name.startswith("step-"):
            assert (p / checkpoints.STATE_FILE).is_file() and (p / "model.safetensors").is_file(), p
    return checkpoints.list_checkpoints(run)


@pytest.mark.parametrize("twice", [False, pytest.param(True, marks=pytest.mark.slow)], ids=["once", "twice"])
def test_train_sigint_then_resume(capsys, tmp_path: Path, twice: bool) -> None:
    """SIGINT: checkpoint at the step reached, exit 0; --resume continues. A second SIGINT during that
    save may leave a hidden temporary, never a visible half checkpoint, and resuming removes it."""
    from fsq_audio.train import checkpoints

    run_dir, data = tmp_path / "run", _train_data(tmp_path / "data")
    proc = spawn(*_train_argv(run_dir, data, "max_steps=100000"))
    wait_for(proc, lambda: len(checkpoints.list_checkpoints(run_dir)) >= 1)
    proc.send_signal(signal.SIGINT)
    if twice:
        time.sleep(0.05)
        proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=300)
    if not twice:
        assert proc.returncode == 0 and "checkpoint saved" in out + err, err[-2000:]
        assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
    assert "Traceback" not in err, err[-2000:]
    done = _assert_only_complete_checkpoints(run_dir)
    step = checkpoints.read_state(done[-1])["step"]
    code, out, err = run(capsys, *_train_argv(run_dir, data, f"max_steps={step + 2}"), "--resume")  # in this process
    assert code == 0, err[-2000:]
    assert f"resumed from {done[-1]} at step {step}" in out + err
    assert checkpoints.read_state(checkpoints.latest_checkpoint(run_dir))["step"] == step + 2
    assert not [p for p in (run_dir / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
