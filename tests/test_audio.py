"""Audio I/O (fsq_audio.audio): info, load, resample, save, folder scans, and refusals."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from fsq_audio import audio
from fsq_audio.errors import AudioError


def test_info_of_the_speech_clip(speech_clip: Path) -> None:
    meta = audio.info(speech_clip)
    assert (meta.sample_rate, meta.channels, meta.frames) == (16000, 1, 25041)
    assert meta.duration == pytest.approx(25041 / 16000)


def test_load_shapes_and_slices(speech_clip: Path) -> None:
    x, sr = audio.load(speech_clip)
    assert x.dtype == np.float32 and x.shape == (1, 25041) and sr == 16000
    assert 0.01 < float(np.abs(x).max()) <= 1.0
    part, _ = audio.load(speech_clip, start=1000, frames=500)
    np.testing.assert_array_equal(part, x[:, 1000:1500])


def test_load_downmixes_and_resamples(tmp_path: Path, speech_clip: Path) -> None:
    x, _ = audio.load(speech_clip)
    stereo = tmp_path / "st.wav"
    sf.write(stereo, np.stack([x[0], 0.5 * x[0]], axis=1), 16000, subtype="FLOAT")
    both, _ = audio.load(stereo, mono=False)
    assert both.shape == (2, x.shape[1])
    mono, _ = audio.load(stereo)
    np.testing.assert_allclose(mono, 0.75 * x, atol=1e-6)
    up, sr = audio.load(speech_clip, sample_rate=44100)
    assert sr == 44100 and abs(up.shape[1] - round(x.shape[1] * 44100 / 16000)) <= 1
    back = audio.resample(up, 44100, 16000)
    assert abs(back.shape[1] - x.shape[1]) <= 1
    n = min(back.shape[1], x.shape[1])
    inner = slice(1000, n - 1000)
    assert np.abs(back[:, inner] - x[:, inner]).max() < 2e-3  # VHQ resampling is nearly transparent


def test_resample_channels_first_and_identity() -> None:
    x = np.random.default_rng(0).standard_normal((3, 4800)).astype(np.float32)
    y = audio.resample(x, 48000, 16000)
    assert y.shape == (3, 1600) and y.dtype == np.float32
    assert audio.resample(x, 16000, 16000) is x
    with pytest.raises(AudioError):
        audio.resample(x, 0, 16000)


def test_refusals_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(AudioError, match="missing.wav"):
        audio.load(tmp_path / "missing.wav")
    with pytest.raises(AudioError, match="directory"):
        audio.info(tmp_path)
    junk = tmp_path / "junk.wav"
    junk.write_bytes(b"not audio at all")
    with pytest.raises(AudioError, match="junk.wav"):
        audio.load(junk)
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no audio"):
        audio.load(empty)
    for bad in (np.nan, np.inf, -np.inf):
        path = tmp_path / "bad.wav"
        x = np.zeros(100, dtype=np.float32)
        x[50] = bad
        sf.write(path, x, 16000, subtype="FLOAT")
        with pytest.raises(AudioError, match="NaN/Inf") as info:
            audio.load(path)
        assert "\n" not in str(info.value)


def test_fit_length() -> None:
    x = np.arange(10, dtype=np.float32).reshape(2, 5)
    assert audio.fit_length(x, 3).shape == (2, 3)
    padded = audio.fit_length(x, 7)
    assert padded.shape == (2, 7) and padded.dtype == np.float32 and not padded[:, 5:].any()


def test_save_clips_and_is_atomic(tmp_path: Path) -> None:
    path = tmp_path / "out.wav"
    audio.save(path, np.array([[0.5, 2.0, -3.0]], dtype=np.float32), 8000)
    y, sr = sf.read(path, dtype="float32")
    assert sr == 8000 and sf.info(path).subtype == "PCM_16"
    np.testing.assert_allclose(y, [0.5, 32767 / 32768, -1.0], atol=1e-4)
    audio.save(tmp_path / "mono1d.flac", np.zeros(16, dtype=np.float32), 16000)
    assert sf.info(tmp_path / "mono1d.flac").format == "FLAC"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mono1d.flac", "out.wav"]
    with pytest.raises(Exception):
        audio.save(tmp_path / "bad.wav", np.zeros((1, 4), dtype=np.float32), 16000, subtype="NOT_A_SUBTYPE")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["mono1d.flac", "out.wav"]  # no partial file left


def test_find_audio_files(tmp_path: Path) -> None:
    (tmp_path / "a" / "b").mkdir(parents=True)
    for name in ("a/x.WAV", "a/b/y.flac", "z.ogg", "notes.txt", "a/b/data.npy"):
        (tmp_path / name).write_bytes(b"")
    found = [p.relative_to(tmp_path).as_posix() for p in audio.find_audio_files(tmp_path)]
    assert found == ["a/b/y.flac", "a/x.WAV", "z.ogg"]
    assert audio.find_audio_files(tmp_path / "z.ogg") == [tmp_path / "z.ogg"]
    with pytest.raises(AudioError):
        audio.find_audio_files(tmp_path / "nowhere")
