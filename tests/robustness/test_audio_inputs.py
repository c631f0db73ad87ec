"""Hostile audio inputs through `fsq-audio compress/decompress` (issue 9, audio input matrix).

Every case ends in one of two ways: a correct round trip (the decompressed file has the input's
length, sample rate and channel count), or exit code 1 with exactly one stderr line
`fsq-audio: error: ...` naming the file, and no output or temporary file left behind.
"""

from __future__ import annotations

import contextlib
import json
import os
import struct
import sys
import threading
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _robust import PREFIX, assert_one_line_error, leftovers, run, run_process

from fsq_audio.cli import main

SR = 16000


def noise(n: int, channels: int = 1, scale: float = 0.1, seed: int = 0) -> np.ndarray:
    x = scale * np.random.default_rng(seed).standard_normal((n, channels))
    return np.clip(x, -1, 1).astype(np.float32)


def write(name: str, x: np.ndarray, rate: int = SR, subtype: str | None = None) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        sf.write(path, x, rate, subtype=subtype)
        return path
    return make


def raw(name: str, data: Callable[[Path], bytes]) -> Callable[[Path], Path]:
    def make(folder: Path) -> Path:
        path = folder / name
        path.write_bytes(data(folder))
        return path
    return make


def wav_bytes(x: np.ndarray, rate: int = SR, subtype: str = "PCM_16") -> bytes:
    import io

    buf = io.BytesIO()
    sf.write(buf, x, rate, subtype=subtype, format="WAV")
    return buf.getvalue()


def patched_rate(rate: int) -> bytes:
    """A valid 16-bit mono wav whose fmt chunk claims `rate` (byte rate patched to match)."""
    data = bytearray(wav_bytes(noise(1600)))
    struct.pack_into("<II", data, 24, rate, 2 * rate)
    return bytes(data)


def square(n: int, period: int = 160) -> np.ndarray:
    return np.where((np.arange(n) // (period // 2)) % 2 == 0, 1.0, -1.0).astype(np.float32)


def cut_mp3(folder: Path) -> bytes:
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile without MP3 support")
    sf.write(folder / "full.mp3", noise(48000), SR)
    data = (folder / "full.mp3").read_bytes()
    (folder / "full.mp3").unlink()
    return data[: len(data) // 2]  # the header still promises 48000 frames


GOOD: dict[str, Callable[[Path], Path]] = {
    "one_sample": write("one.wav", np.array([0.3], dtype=np.float32)),
    "silence": write("silence.wav", np.zeros(SR, dtype=np.float32)),
    "dc_offset": write("dc.wav", 0.6 + noise(SR, scale=0.01)),
    "clipped_square": write("square.wav", square(SR), subtype="PCM_16"),  # full scale, -32768..32767
    "pcm_u8": write("u8.wav", noise(SR), subtype="PCM_U8"),
    "pcm_24": write("p24.wav", noise(SR), subtype="PCM_24"),
    "pcm_32": write("p32.wav", noise(SR), subtype="PCM_32"),
    "float32": write("f32.wav", noise(SR), subtype="FLOAT"),
    "float64": write("f64.wav", noise(SR), subtype="DOUBLE"),
    "float_beyond_full_scale": write("loud.wav", 3e38 * square(SR), subtype="FLOAT"),
    **{f"rate_{r}": write(f"r{r}.wav", noise(r // 2), r)
       for r in (8000, 11025, 22050, 32000, 44100, 48000, 88200, 96000)},
    "six_channels_48k": write("six.wav", noise(24000, channels=6), 48000, subtype="PCM_24"),
    "stereo_flac_44k": write("st.flac", noise(22050, channels=2), 44100),
    "ogg_vorbis": write("v.ogg", noise(SR), subtype="VORBIS"),
    "aiff": write("a.aiff", noise(SR)),
    "upper_case_suffix": write("LOUD.WAV", noise(SR)),
    "truncated_data_chunk": raw("cut.wav", lambda _: wav_bytes(noise(SR))[: 44 + 2 * 1001]),
    "cut_mp3_header_promises_more": raw("cut.mp3", cut_mp3),
}


@pytest.mark.parametrize("case", list(GOOD))
def test_readable_input_round_trips(capsys, tmp_path: Path, tiny_model_dir: Path, case: str) -> None:
    src = GOOD[case](tmp_path)
    x, rate = sf.read(src, dtype="float32", always_2d=True)  # what is actually decodable
    fsqa, out = tmp_path / "x.fsqa", tmp_path / "x.out.wav"
    code, _, err = run(capsys, "compress", src, "-o", fsqa, "-m", tiny_model_dir, "-q")
    assert code == 0 and not err, err
    code, _, err = run(capsys, "decompress", fsqa, "-o", out, "-m", tiny_model_dir, "-q")
    assert code == 0 and not err, err
    meta = sf.info(out)
    assert (meta.frames, meta.samplerate, meta.channels) == (len(x), rate, x.shape[1])
    y, _ = sf.read(out, dtype="float32")
    assert np.isfinite(y).all()
    assert not leftovers(tmp_path)


def fifo(folder: Path) -> Path:
    path = folder / "pipe.wav"
    os.mkfifo(path)
    return path


def directory(folder: Path) -> Path:
    path = folder / "folder.wav"
    path.mkdir()
    return path


def missing(folder: Path) -> Path:
    return folder / "missing.wav"


def _nan(value: float) -> Callable[[Path], bytes]:
    def data(_: Path) -> bytes:
        x = noise(SR)
        x[SR // 2] = value
        return wav_bytes(x, subtype="FLOAT")
    return data


BAD: dict[str, tuple[Callable[[Path], Path], str]] = {
    "missing_file": (missing, "no such file"),
    "empty_file_0_bytes": (raw("empty.wav", lambda _: b""), "not a readable audio file"),
    "zero_length_audio": (raw("nothing.wav", lambda _: wav_bytes(np.zeros((0, 1), np.float32))), "no audio"),
    "riff_header_only": (raw("riff.wav", lambda _: b"RIFF\x24\x00\x00\x00WAVEfmt "), "not a readable audio file"),
    "truncated_header": (raw("cut_head.wav", lambda _: wav_bytes(noise(SR))[:30]), "not a readable audio file"),
    "text_renamed_wav": (raw("notes.wav", lambda _: b"these are my notes\n" * 50), "not a readable audio file"),
    "random_bytes": (raw("noise.wav", lambda _: np.random.default_rng(1).bytes(4096)), "not a readable audio file"),
    "nan_samples": (raw("nan.wav", _nan(np.nan)), "NaN/Inf"),
    "inf_samples": (raw("inf.wav", _nan(np.inf)), "NaN/Inf"),
    "minus_inf_samples": (raw("ninf.wav", _nan(-np.inf)), "NaN/Inf"),
    "rate_100_hz": (write("slow.wav", noise(100), 100), "sample rate"),
    "rate_2_mhz": (raw("fast.wav", lambda _: patched_rate(2_000_000)), "sample rate"),
    "rate_0_hz": (raw("zero_rate.wav", lambda _: patched_rate(0)), "zero_rate.wav"),
    "100_channels": (write("many.wav", noise(1600, channels=100)), "channels"),
    "directory_named_wav": (directory, "files found"),
    "fifo_named_wav": (fifo, "not a regular file"),
    "cut_flac": (raw("cut.flac", lambda f: _cut_flac(f)), "cannot decode"),
}


def _cut_flac(folder: Path) -> bytes:
    sf.write(folder / "full.flac", noise(48000), SR)
    data = (folder / "full.flac").read_bytes()
    (folder / "full.flac").unlink()
    return data[: len(data) // 2]


def _feed_fifo(path: Path) -> None:
    with contextlib.suppress(OSError):  # the reader may close first (broken pipe)
        path.write_bytes(b"garbage")


@pytest.fixture()
def unblock_fifos(tmp_path: Path):
    """If a regression made the CLI open a FIFO, feed it garbage so the test fails instead of hanging."""
    yield
    for p in tmp_path.iterdir():
        if p.is_fifo():
            fd = os.open(p, os.O_RDONLY | os.O_NONBLOCK)  # releases a writer, if any
            os.close(fd)


@pytest.mark.parametrize("case", list(BAD))
def test_unusable_input_is_a_one_line_error(capsys, tmp_path: Path, tiny_model_dir: Path, case: str,
                                            unblock_fifos) -> None:
    make, needle = BAD[case]
    src = make(tmp_path)
    if case == "fifo_named_wav":
        threading.Thread(target=_feed_fifo, args=(src,), daemon=True).start()
    code, _, err = run(capsys, "compress", src, "-o", tmp_path / "x.fsqa", "-m", tiny_model_dir)
    assert_one_line_error(code, err, src.name, needle)
    assert not (tmp_path / "x.fsqa").exists() and not leftovers(tmp_path)


@pytest.mark.parametrize("argv,needle", [
    (["compress", "{wav}", "-b", "nan"], "--bitrate"),
    (["compress", "{wav}", "-b", "inf"], "--bitrate"),
    (["compress", "{wav}", "-b", "-3"], "--bitrate"),
    (["compress", "{wav}", "-s", "0"], "--stages"),
    (["compress", "{wav}", "--threads", "-1"], "--threads"),
    (["decompress", "{fsqa}", "-r", "-5"], "--sample-rate"),
    (["decompress", "{fsqa}", "-r", "0"], "--sample-rate"),
    (["decompress", "{fsqa}", "-r", str(2**31)], "--sample-rate"),
], ids=["bitrate_nan", "bitrate_inf", "bitrate_negative", "stages_0", "threads_negative", "rate_negative",
        "rate_zero", "rate_huge"])
def test_hostile_options_are_one_line_errors(capsys, tmp_path: Path, tiny_model_dir: Path, argv: list[str],
                                             needle: str) -> None:
    wav, fsqa = tmp_path / "in.wav", tmp_path / "in.fsqa"
    sf.write(wav, noise(1600), SR)
    assert run(capsys, "compress", wav, "-o", fsqa, "-m", tiny_model_dir)[0] == 0
    out = tmp_path / "out"
    argv = [a.format(wav=wav, fsqa=fsqa) for a in argv] + ["-o", str(out), "-m", str(tiny_model_dir)]
    code, _, err = run(capsys, *argv)
    assert_one_line_error(code, err, needle)
    assert not out.exists() and not leftovers(tmp_path)


def test_folder_with_unusable_files_carries_on(capsys, tmp_path: Path, tiny_model_dir: Path,
                                               unblock_fifos) -> None:
    """Good files are all compressed; every bad one is reported once, in a summary at the end; exit 1."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for i, rel in enumerate(("a.wav", "sub/b.flac", "z.wav")):
        sf.write(src / rel, noise(4000, seed=i), SR)
    bad = {"empty.wav": b"", "notes.wav": b"text\n" * 100, "sub/cut.wav": wav_bytes(noise(SR))[:30],
           "nan.wav": _nan(np.nan)(tmp_path), "nothing.wav": wav_bytes(np.zeros((0, 1), np.float32))}
    for rel, data in bad.items():
        (src / rel).write_bytes(data)
    (src / "dir.wav").mkdir()  # not a file: skipped
    (src / "dangling.wav").symlink_to(src / "gone.wav")  # broken link: skipped
    os.mkfifo(src / "pipe.wav")  # not a regular file: skipped, never opened
    code, _, err = run(capsys, "compress", src, "-o", tmp_path / "out", "-m", tiny_model_dir, "-q")
    assert code == 1
    assert f"{len(bad)} of {len(bad) + 3} files failed" in err
    summary = err[err.index("files failed"):]
    for rel in bad:
        assert rel in summary
    assert "Traceback" not in err
    made = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*") if p.is_file())
    assert made == ["a.fsqa", "sub/b.fsqa", "z.fsqa"]
    assert not leftovers(tmp_path)


def test_batch_carries_on_past_an_os_error(capsys, tmp_path: Path, tiny_model_dir: Path) -> None:
    """An output that cannot be written (its folder is a file) fails that input only."""
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    for rel in ("a.wav", "sub/b.wav", "z.wav"):
        sf.write(src / rel, noise(1600), SR)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "sub").write_text("a file where a folder should be")
    code, _, err = run(capsys, "compress", src, "-o", tmp_path / "out", "-m", tiny_model_dir, "-q")
    assert code == 1 and "1 of 3 files failed" in err and "sub/b.wav" in err and "Traceback" not in err
    assert (tmp_path / "out" / "a.fsqa").is_file() and (tmp_path / "out" / "z.fsqa").is_file()


def test_file_name_with_a_newline_stays_one_line(capsys, tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "in"
    src.mkdir()
    sf.write(src / "good.wav", noise(1600), SR)
    (src / "evil\nfsq-audio: ok.wav").write_text("not audio")
    code, _, err = run(capsys, "compress", src / "evil\nfsq-audio: ok.wav", "-o", tmp_path / "x.fsqa",
                       "-m", tiny_model_dir)
    assert_one_line_error(code, err, "evil fsq-audio: ok.wav")
    code, _, err = run(capsys, "compress", src, "-o", tmp_path / "out", "-m", tiny_model_dir, "-q")
    lines = err.splitlines()
    assert code == 1 and len(lines) == 3 and lines[1] == "fsq-audio: 1 of 2 files failed:", err
    assert lines[0].startswith(PREFIX) and "evil fsq-audio: ok.wav" in lines[0]
    assert lines[2] == "  " + lines[0][len(PREFIX):]


def test_real_processes(tmp_path: Path, tiny_model_dir: Path) -> None:
    """The same contract through `python -m fsq_audio` (real exit codes, nothing but one stderr line)."""
    src, fsqa, out = tmp_path / "six.wav", tmp_path / "six.fsqa", tmp_path / "six.out.wav"
    sf.write(src, noise(30000, channels=6), 44100, subtype="PCM_24")
    proc = run_process("compress", src, "-o", fsqa, "-m", tiny_model_dir, "--threads", "1")
    assert proc.returncode == 0 and proc.stderr == "", proc.stderr
    assert main(["decompress", str(fsqa), "-o", str(out), "-m", str(tiny_model_dir)]) == 0
    meta = sf.info(out)
    assert (meta.frames, meta.samplerate, meta.channels) == (30000, 44100, 6)
    bad = tmp_path / "report.wav"
    bad.write_text("not audio")
    proc = run_process("compress", bad, "-m", tiny_model_dir)
    assert_one_line_error(proc.returncode, proc.stderr, "report.wav")
    assert proc.stdout == "" and not (tmp_path / "report.fsqa").exists()


_RSS_SCRIPT = """
import json, resource, sys
from fsq_audio.cli import main
code = main(sys.argv[1:])
print(json.dumps({"code": code, "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024}))
"""


def _peak_rss(*argv) -> float:
    import subprocess

    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run([sys.executable, "-c", _RSS_SCRIPT, *map(str, argv)], capture_output=True, text=True,
                          env=env, timeout=3600)
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    assert result["code"] == 0, proc.stderr[-3000:]
    return result["peak_rss_mb"]


@pytest.mark.slow
def test_two_hour_file_streams_in_bounded_memory(tmp_path: Path, tiny_model_dir: Path) -> None:
    """2 h of 8 kHz audio (resampled both ways) through the CLI: same length out, peak RSS < 1 GB."""
    src, fsqa, out = tmp_path / "long.wav", tmp_path / "long.fsqa", tmp_path / "long.out.wav"
    rate, total = 8000, 2 * 3600 * 8000
    block = noise(rate * 60, scale=0.2)
    with sf.SoundFile(str(src), "w", samplerate=rate, channels=1, subtype="PCM_16") as f:
        for start in range(0, total, len(block)):
            f.write(block[: total - start])
    common = ["-m", tiny_model_dir, "-q", "--threads", "1"]
    rss_compress = _peak_rss("compress", src, "-o", fsqa, *common)
    rss_decompress = _peak_rss("decompress", fsqa, "-o", out, *common)
    print(f"\n2-hour 8 kHz file: peak RSS compress {rss_compress:.0f} MB, decompress {rss_decompress:.0f} MB")
    assert sf.info(out).frames == total and sf.info(out).samplerate == rate
    assert rss_compress < 1000 and rss_decompress < 1000
