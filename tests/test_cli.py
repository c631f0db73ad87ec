"""The `fsq-audio` command line: compress / decompress / info round trips and one-line errors."""

from __future__ import annotations

import json
import math
import os
import re
import shutil
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fsq_audio import audio, bitstream
from fsq_audio.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line_error(code: int, err: str, *needles: str) -> None:
    assert code == 1
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    assert lines[0].startswith("fsq-audio: error: ")
    for needle in needles:
        assert needle in lines[0]


def round_trip(capsys, model: Path, src: Path, tmp_path: Path, *extra: str) -> tuple[Path, Path]:
    fsqa, out = tmp_path / (src.stem + ".fsqa"), tmp_path / (src.stem + ".out.wav")
    code, _, err = run(capsys, "compress", src, "-o", fsqa, "-m", model, *extra)
    assert code == 0, err
    code, _, err = run(capsys, "decompress", fsqa, "-o", out, "-m", model)
    assert code == 0, err
    return fsqa, out


def expected_size(fsqa: Path) -> int:
    """9-byte prefix + JSON header + ceil(stages * frames * bits / 8) payload + 4-byte CRC."""
    data = fsqa.read_bytes()
    (head_len,) = struct.unpack_from("<I", data, 5)
    head = json.loads(data[9: 9 + head_len])
    return 9 + head_len + math.ceil(head["stages"] * head["frames"] * head["bits_per_code"] / 8) + 4


def test_round_trip_of_real_speech(capsys, tmp_path: Path, tiny_model_dir: Path, speech_clip: Path) -> None:
    fsqa, out = round_trip(capsys, tiny_model_dir, speech_clip, tmp_path)
    meta, ref = sf.info(out), sf.info(speech_clip)
    assert (meta.frames, meta.samplerate, meta.channels) == (ref.frames, ref.samplerate, ref.channels)
    assert fsqa.stat().st_size == expected_size(fsqa)
    header = bitstream.read_header(fsqa)
    assert header.frames == math.ceil(ref.frames / 320) and header.stages == 3 and header.bits_per_code == 10


def test_round_trip_of_stereo_44k(capsys, tmp_path: Path, tiny_model_dir: Path, speech_clip: Path) -> None:
    x, _ = audio.load(speech_clip, sample_rate=44100)
    src = tmp_path / "stereo44.wav"
    audio.save(src, np.concatenate([x, 0.5 * x]), 44100)
    fsqa, out = round_trip(capsys, tiny_model_dir, src, tmp_path)
    meta = sf.info(out)
    assert (meta.frames, meta.samplerate, meta.channels) == (x.shape[-1], 44100, 2)
    assert fsqa.stat().st_size == expected_size(fsqa)
    header = bitstream.read_header(fsqa)
    assert (header.orig_sample_rate, header.orig_channels, header.orig_samples) == (44100, 2, x.shape[-1])


@pytest.mark.parametrize("samples,rate", [(1, 16000), (100, 16000), (319, 16000), (5, 44100), (700, 48000)])
def test_shorter_than_one_frame(capsys, tmp_path: Path, tiny_model_dir: Path, samples: int, rate: int) -> None:
    src = tmp_path / "short.wav"
    sf.write(src, 0.1 * np.random.default_rng(samples).standard_normal(samples).astype(np.float32), rate)
    fsqa, out = round_trip(capsys, tiny_model_dir, src, tmp_path)
    assert bitstream.read_header(fsqa).frames == 1
    meta = sf.info(out)
    assert (meta.frames, meta.samplerate, meta.channels) == (samples, rate, 1)


def test_stages_and_bitrate_options(capsys, tmp_path: Path, tiny_model_dir: Path, speech_clip: Path) -> None:
    fsqa, _ = round_trip(capsys, tiny_model_dir, speech_clip, tmp_path, "--stages", "1")
    assert bitstream.read_header(fsqa).stages == 1
    one = fsqa.stat().st_size
    code, _, err = run(capsys, "compress", speech_clip, "-o", tmp_path / "b.fsqa", "-m", tiny_model_dir, "-b", "1.0")
    assert code == 0, err
    assert bitstream.read_header(tmp_path / "b.fsqa").stages == 2  # 1 kbps fits 2 stages of 500 bps
    assert (tmp_path / "b.fsqa").stat().st_size > one
    code, _, err = run(capsys, "compress", speech_clip, "-o", tmp_path / "c.fsqa", "-m", tiny_model_dir, "-s", "9")
    assert_one_line_error(code, err, "stages")


def test_refuses_to_overwrite_without_force(capsys, tmp_path: Path, tiny_model_dir: Path, speech_clip: Path) -> None:
    fsqa, out = round_trip(capsys, tiny_model_dir, speech_clip, tmp_path)
    for path, argv in ((fsqa, ["compress", speech_clip, "-o", fsqa, "-m", tiny_model_dir, "-s", "1"]),
                       (out, ["decompress", fsqa, "-o", out, "-m", tiny_model_dir])):
        before, mtime = path.read_bytes(), path.stat().st_mtime_ns
        code, _, err = run(capsys, *argv)
        assert_one_line_error(code, err, str(path), "--force")
        assert path.read_bytes() == before and path.stat().st_mtime_ns == mtime
        code, _, err = run(capsys, *argv, "--force")
        assert code == 0, err
    assert bitstream.read_header(fsqa).stages == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([fsqa.name, out.name])  # no temp files left


def test_directory_with_a_bad_file_carries_on(capsys, tmp_path: Path, tiny_model_dir: Path,
                                              speech_clip: Path) -> None:
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    shutil.copy(speech_clip, src / "a.flac")
    shutil.copy(speech_clip, src / "sub" / "c.flac")
    (src / "b.wav").write_bytes(b"RIFF not really a wave file")
    (src / "notes.txt").write_text("ignored: not audio")
    code, _, err = run(capsys, "compress", src, "-o", tmp_path / "out", "-m", tiny_model_dir, "-q")
    assert code == 1
    assert "1 of 3 files failed" in err and "b.wav" in err
    made = sorted(p.relative_to(tmp_path / "out").as_posix() for p in (tmp_path / "out").rglob("*.fsqa"))
    assert made == ["a.fsqa", "sub/c.fsqa"]
    # decompressing the folder (with a non-.fsqa impostor) behaves the same way
    (tmp_path / "out" / "z.fsqa").write_bytes((src / "a.flac").read_bytes())
    code, _, err = run(capsys, "decompress", tmp_path / "out", "-o", tmp_path / "wav", "-m", tiny_model_dir, "-q")
    assert code == 1 and "1 of 3 files failed" in err and "z.fsqa" in err
    assert (tmp_path / "wav" / "a.wav").is_file() and (tmp_path / "wav" / "sub" / "c.wav").is_file()


def test_info(capsys, tmp_path: Path, tiny_model_dir: Path, speech_clip: Path) -> None:
    fsqa, _ = round_trip(capsys, tiny_model_dir, speech_clip, tmp_path)
    code, out, _ = run(capsys, "info", fsqa)
    assert code == 0
    assert re.search(r"frames: 79\b", out) and re.search(r"stages: 3\b", out)
    assert "16000 Hz, 1 ch, 25041 samples" in out
    code, out, _ = run(capsys, "info", fsqa, "--json")
    data = json.loads(out)
    assert data["bytes"] == fsqa.stat().st_size and data["codebook_size"] == 1000
    assert data["frame_rate"] == pytest.approx(50.0, rel=0.01)
    assert data["payload_kbps"] == pytest.approx(1.5, rel=0.02)  # 3 stages x 10 bits x 50 Hz
    code, out, _ = run(capsys, "info", tiny_model_dir, "--json")
    data = json.loads(out)
    assert data["bitrates_kbps"] == [0.5, 1.0, 1.5] and data["levels"] == [8, 5, 5, 5]
    code, _, err = run(capsys, "info", tmp_path / "missing.fsqa")
    assert_one_line_error(code, err)


def test_empty_audio_is_a_one_line_error(capsys, tmp_path: Path, tiny_model_dir: Path) -> None:
    src = tmp_path / "empty.wav"
    sf.write(src, np.zeros((0, 1), dtype=np.float32), 16000)
    code, _, err = run(capsys, "compress", src, "-o", tmp_path / "e.fsqa", "-m", tiny_model_dir)
    assert_one_line_error(code, err, "empty.wav")
    (tmp_path / "zero.wav").write_bytes(b"")
    code, _, err = run(capsys, "compress", tmp_path / "zero.wav", "-o", tmp_path / "z.fsqa", "-m", tiny_model_dir)
    assert_one_line_error(code, err, "zero.wav")
    assert not list(tmp_path.glob("*.fsqa"))


def test_nan_audio_is_a_one_line_error(capsys, tmp_path: Path, tiny_model_dir: Path) -> None:
    x = 0.1 * np.random.default_rng(0).standard_normal(100_000).astype(np.float32)
    x[90_000] = np.nan  # past the first read block
    src = tmp_path / "nan.wav"
    sf.write(src, x, 16000, subtype="FLOAT")
    code, _, err = run(capsys, "compress", src, "-o", tmp_path / "n.fsqa", "-m", tiny_model_dir)
    assert_one_line_error(code, err, "nan.wav", "NaN")
    assert not any(p.suffix.startswith(".fsqa") or ".fsqa" in p.name for p in tmp_path.iterdir())


def test_wrong_inputs_are_one_line_errors(capsys, tmp_path: Path, tiny_model_dir: Path, speech_clip: Path) -> None:
    fake = tmp_path / "speech.fsqa"
    shutil.copy(speech_clip, fake)
    code, _, err = run(capsys, "decompress", fake, "-o", tmp_path / "x.wav", "-m", tiny_model_dir)
    assert_one_line_error(code, err, "speech.fsqa", "not an .fsqa")
    code, _, err = run(capsys, "compress", tmp_path / "nope.wav", "-m", tiny_model_dir)
    assert_one_line_error(code, err, "nope.wav")
    code, _, err = run(capsys, "compress", speech_clip, "-o", tmp_path / "y.fsqa", "-m", tmp_path / "no-model")
    assert_one_line_error(code, err, "no-model")


def test_decompress_with_another_model(capsys, tmp_path: Path, tiny_model_dir: Path, speech_clip: Path) -> None:
    from fsq_audio import Codec, CodecConfig

    other = tmp_path / "other"
    Codec(CodecConfig.tiny(name="other")).save_pretrained(str(other))
    fsqa, _ = round_trip(capsys, tiny_model_dir, speech_clip, tmp_path)
    code, _, err = run(capsys, "decompress", fsqa, "-o", tmp_path / "o.wav", "-m", other)
    assert_one_line_error(code, err, "--model")
    assert not (tmp_path / "o.wav").exists()


def test_python_dash_m_help(capsys) -> None:
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.run([sys.executable, "-m", "fsq_audio", "--help"], capture_output=True, text=True,
                          env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    for command in ("compress", "decompress", "info"):
        assert command in proc.stdout
    with pytest.raises(SystemExit) as info:
        main(["compress", "--help"])
    assert info.value.code == 0 and "--force" in capsys.readouterr().out


def _write_long_wav(path: Path, clip: Path, seconds: int) -> int:
    """Write `seconds` of 16 kHz 16-bit audio (the clip tiled with varying gain) block by block."""
    x, _ = audio.load(clip)
    rng = np.random.default_rng(0)
    total, written = seconds * 16000, 0
    with sf.SoundFile(str(path), "w", samplerate=16000, channels=1, subtype="PCM_16") as f:
        while written < total:
            block = (x[0] * rng.uniform(0.3, 1.0))[: total - written]
            f.write(block)
            written += len(block)
    return total


def _peak_rss_mb(argv: list[str]) -> float:
    time_bin = shutil.which("time") or "/usr/bin/time"
    if not Path(time_bin).exists():
        pytest.skip("GNU time is not installed (apt-get install -y time)")
    proc = subprocess.run([time_bin, "-v", sys.executable, "-m", "fsq_audio", *argv], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    match = re.search(r"Maximum resident set size \(kbytes\):\s*(\d+)", proc.stderr)
    assert match, proc.stderr[-3000:]
    return int(match.group(1)) * 1024 / 1e6


@pytest.mark.slow
def test_one_hour_file_in_bounded_memory(tmp_path: Path, tiny_model_dir: Path, speech_clip: Path) -> None:
    """Compress + decompress 1 h of 16 kHz audio through the CLI; peak RSS must stay under 1.5 GB."""
    src, fsqa, out = tmp_path / "hour.wav", tmp_path / "hour.fsqa", tmp_path / "hour.out.wav"
    samples = _write_long_wav(src, speech_clip, 3600)
    common = ["-m", str(tiny_model_dir), "-q", "--threads", "1"]
    rss_compress = _peak_rss_mb(["compress", str(src), "-o", str(fsqa), *common])
    rss_decompress = _peak_rss_mb(["decompress", str(fsqa), "-o", str(out), *common])
    print(f"\n1-hour 16 kHz file, tiny model: peak RSS compress {rss_compress:.0f} MB, "
          f"decompress {rss_decompress:.0f} MB")
    assert bitstream.read_header(fsqa).frames == 3600 * 50
    assert sf.info(out).frames == samples
    assert rss_compress < 1500 and rss_decompress < 1500
