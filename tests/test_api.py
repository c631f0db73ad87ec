"""File-level compress/decompress (fsq_audio.api) with a tiny random model and a real speech clip."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fsq_audio import Codec, CodecConfig, api, audio, bitstream
from fsq_audio.errors import AudioError, BitstreamError, FsqAudioError, ModelError


@pytest.fixture(scope="module")
def codec(tiny_model_dir: Path) -> Codec:
    return Codec.from_pretrained(str(tiny_model_dir))


@pytest.fixture(scope="module")
def other_codec(tmp_path_factory) -> Codec:
    """A second tiny model of the same architecture, different weights."""
    directory = tmp_path_factory.mktemp("other_model")
    with torch.random.fork_rng():
        torch.manual_seed(1)
        Codec(CodecConfig.tiny()).save_pretrained(str(directory))
    return Codec.from_pretrained(str(directory))


@pytest.fixture()
def stream(tmp_path: Path, codec: Codec, speech_clip: Path) -> Path:
    dst = tmp_path / "clip.fsqa"
    api.compress_file(speech_clip, dst, codec)
    return dst


def test_compress_stores_the_canonical_tokens(tmp_path: Path, codec: Codec, speech_clip: Path) -> None:
    dst = tmp_path / "clip.fsqa"
    result = api.compress_file(speech_clip, dst, codec)
    x, sr = audio.load(speech_clip)
    expected = codec.encode(torch.from_numpy(x)[None])[0].numpy()
    header, idx = bitstream.read(dst)
    np.testing.assert_array_equal(idx, expected)
    np.testing.assert_array_equal(result["indices"], expected)
    assert result["bytes"] == dst.stat().st_size
    assert header.model_id == codec.model_id and header.stages == codec.num_stages
    assert (header.orig_sample_rate, header.orig_channels, header.orig_samples) == (sr, 1, x.shape[-1])
    assert header.samples == x.shape[-1] and header.levels == codec.config.levels


def test_decompress_restores_rate_channels_and_length(tmp_path: Path, codec: Codec, stream: Path,
                                                      speech_clip: Path) -> None:
    out = tmp_path / "out.wav"
    api.decompress_file(stream, out, codec)
    meta, ref = sf.info(out), sf.info(speech_clip)
    assert (meta.samplerate, meta.channels, meta.frames) == (ref.samplerate, ref.channels, ref.frames)
    # the written audio is the model's decode of the stored tokens (as 16-bit PCM)
    _, idx = bitstream.read(stream)
    y = codec.decode(torch.from_numpy(idx)[None])[0, 0, : ref.frames].clamp(-1, 1).numpy()
    written, _ = sf.read(out, dtype="float32")
    assert np.abs(written - y).max() < 2 / 32768


def test_decompress_to_another_rate(tmp_path: Path, codec: Codec, stream: Path, speech_clip: Path) -> None:
    out = tmp_path / "out8k.flac"
    api.decompress_file(stream, out, codec, sample_rate=8000)
    meta = sf.info(out)
    assert meta.format == "FLAC" and meta.samplerate == 8000
    assert meta.frames == round(sf.info(speech_clip).frames * 8000 / 16000)


def test_fewer_stages(tmp_path: Path, codec: Codec, speech_clip: Path) -> None:
    dst = tmp_path / "s1.fsqa"
    api.compress_file(speech_clip, dst, codec, stages=1)
    header, idx = bitstream.read(dst)
    assert header.stages == 1 and idx.shape[0] == 1
    api.decompress_file(dst, tmp_path / "s1.wav", codec)
    for bad in (0, codec.num_stages + 1):
        with pytest.raises(FsqAudioError, match="stages"):
            api.compress_file(speech_clip, tmp_path / "bad.fsqa", codec, stages=bad)


def test_another_model_is_refused(tmp_path: Path, stream: Path, other_codec: Codec, codec: Codec) -> None:
    header = bitstream.read_header(stream)
    api.check_model(header, codec)
    with pytest.raises(ModelError, match="model") as info:
        api.check_model(header, other_codec)
    assert "\n" not in str(info.value)
    out = tmp_path / "out.wav"
    with pytest.raises(ModelError):
        api.decompress_file(stream, out, other_codec)
    assert not out.exists() and not list(tmp_path.glob(".out.wav*"))


def test_stream_of_an_uninstalled_model_needs_model_argument(tmp_path: Path, stream: Path, monkeypatch) -> None:
    monkeypatch.setenv("FSQ_AUDIO_MODELS", str(tmp_path / "nothing"))
    with pytest.raises(ModelError, match="--model"):
        api.decompress_file(stream, tmp_path / "out.wav", None)


def test_existing_output_needs_force(tmp_path: Path, codec: Codec, speech_clip: Path, stream: Path) -> None:
    before = stream.read_bytes()
    with pytest.raises(FsqAudioError, match="--force"):
        api.compress_file(speech_clip, stream, codec, stages=1)
    assert stream.read_bytes() == before
    api.compress_file(speech_clip, stream, codec, stages=1, force=True)
    assert bitstream.read_header(stream).stages == 1


def test_corrupt_stream_is_refused_before_writing(tmp_path: Path, codec: Codec, stream: Path) -> None:
    data = bytearray(stream.read_bytes())
    data[-10] ^= 0xFF
    stream.write_bytes(bytes(data))
    out = tmp_path / "out.wav"
    with pytest.raises(BitstreamError, match="clip.fsqa"):
        api.decompress_file(stream, out, codec)
    assert not out.exists()


def test_empty_and_nan_inputs(tmp_path: Path, codec: Codec) -> None:
    empty = tmp_path / "empty.wav"
    sf.write(empty, np.zeros((0, 1), dtype=np.float32), 16000)
    with pytest.raises(AudioError, match="no audio"):
        api.compress_file(empty, tmp_path / "e.fsqa", codec)
    nan = tmp_path / "nan.wav"
    x = np.zeros(4000, dtype=np.float32)
    x[1234] = np.nan
    sf.write(nan, x, 16000, subtype="FLOAT")
    with pytest.raises(AudioError, match="NaN"):
        api.compress_file(nan, tmp_path / "n.fsqa", codec)
    assert not list(tmp_path.glob("*.fsqa*")) and not list(tmp_path.glob(".*.fsqa*"))
    with pytest.raises(AudioError):
        api.encode_blocks(codec, iter([]))


class ToyCoder:
    """An 'entropy coder' that stores indices as int16 bytes (exercises the EntropyCoder protocol)."""

    id = "toy-1"

    def encode(self, indices: np.ndarray) -> bytes:
        return indices.astype("<i2").tobytes()

    def decode(self, payload: bytes, stages: int, frames: int) -> np.ndarray:
        return np.frombuffer(payload, dtype="<i2").astype(np.int64).reshape(stages, frames)


class BrokenCoder(ToyCoder):
    def decode(self, payload: bytes, stages: int, frames: int) -> np.ndarray:
        raise IndexError("ran off the end")


def test_entropy_coder_round_trip_and_errors(tmp_path: Path, codec: Codec, speech_clip: Path,
                                             stream: Path) -> None:
    dst = tmp_path / "lm.fsqa"
    api.compress_file(speech_clip, dst, codec, entropy_coder=ToyCoder())
    header, idx = api.read_indices(dst, codec, ToyCoder())
    assert header.entropy == "lm" and header.lm_id == "toy-1"
    np.testing.assert_array_equal(idx, bitstream.read(stream)[1])
    api.decompress_file(dst, tmp_path / "lm.wav", codec, entropy_coder=ToyCoder())
    with pytest.raises(BitstreamError, match="--lm"):
        api.read_indices(dst, codec)
    other = ToyCoder()
    other.id = "toy-2"
    with pytest.raises(ModelError):
        api.read_indices(dst, codec, other)
    with pytest.raises(BitstreamError, match="corrupt"):
        api.read_indices(dst, codec, BrokenCoder())


def test_stereo_input_is_downmixed(tmp_path: Path, codec: Codec, speech_clip: Path, stream: Path) -> None:
    x, _ = audio.load(speech_clip)
    stereo = tmp_path / "stereo.wav"
    sf.write(stereo, np.stack([x[0], x[0]], axis=1), 16000, subtype="FLOAT")
    api.compress_file(stereo, tmp_path / "stereo.fsqa", codec)
    header, idx = bitstream.read(tmp_path / "stereo.fsqa")
    assert header.orig_channels == 2
    np.testing.assert_array_equal(idx, bitstream.read(stream)[1])  # (L + R) / 2 of equal channels is the clip


def _recrafted(stream: Path, **fields) -> bytes:
    """The stream with header fields replaced and a valid checksum (a crafted, not a damaged, file)."""
    import json
    import struct
    import zlib
    from dataclasses import asdict

    header, idx = bitstream.read(stream)
    payload = bitstream.pack(idx, header.bits_per_code)
    head = json.dumps({**asdict(header), **fields}).encode()
    crc = zlib.crc32(payload, zlib.crc32(head))
    return struct.pack("<4sBI", b"FSQA", 1, len(head)) + head + payload + struct.pack("<I", crc)


@pytest.mark.parametrize("fields", [
    dict(orig_samples=10**9),  # would pad the output with a billion zeros
    dict(samples=10**9),
    dict(orig_sample_rate=2**40),  # overflows libsndfile
    dict(orig_sample_rate=48000),  # length no longer matches the rate
    dict(sample_rate=8000),
], ids=["orig_samples", "samples", "huge_rate", "rate_vs_length", "model_rate"])
def test_crafted_inconsistent_header_is_refused(tmp_path: Path, codec: Codec, stream: Path, fields: dict) -> None:
    crafted = tmp_path / "crafted.fsqa"
    crafted.write_bytes(_recrafted(stream, **fields))
    with pytest.raises(BitstreamError, match="crafted.fsqa") as info:
        api.decompress_file(crafted, tmp_path / "out.wav", codec)
    assert "\n" not in str(info.value)
    assert not (tmp_path / "out.wav").exists()
