"""The .fsqa container (fsq_audio.bitstream): packing, round trips, and one-line errors for bad input."""

from __future__ import annotations

import json
import math
import random
import struct
import zlib
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import given, settings
from hypothesis import strategies as st

from fsq_audio import bitstream
from fsq_audio.bitstream import StreamHeader
from fsq_audio.errors import BitstreamError

LEVELS = [8, 5, 5, 5]


def make_header(stages: int = 3, frames: int = 20, levels: list[int] | None = None, **kw) -> StreamHeader:
    levels = levels or LEVELS
    bits = max(1, math.ceil(math.log2(math.prod(levels))))
    samples = max(0, frames * 320 - 17)
    fields = dict(model_id="tiny-0123456789ab", sample_rate=16000, frames=frames, stages=stages, levels=levels,
                  bits_per_code=bits, samples=samples, orig_sample_rate=44100,
                  orig_samples=round(samples * 44100 / 16000), orig_channels=2)
    fields.update(kw)
    return StreamHeader(**fields)


def make_stream(stages: int = 3, frames: int = 20, seed: int = 0) -> tuple[bytes, np.ndarray]:
    header = make_header(stages, frames)
    idx = np.random.default_rng(seed).integers(0, header.codebook_size, (stages, frames))
    return bitstream.encode(header, idx), idx


def raw_stream(meta: dict, payload: bytes, version: int = bitstream.FORMAT_VERSION) -> bytes:
    """Bytes of a stream with any header JSON, a valid CRC and a consistent length field."""
    head = json.dumps(meta, separators=(",", ":")).encode()
    crc = zlib.crc32(payload, zlib.crc32(head))
    return struct.pack("<4sBI", b"FSQA", version, len(head)) + head + payload + struct.pack("<I", crc)


def assert_bitstream_error(data: bytes, match: str | None = None) -> str:
    with pytest.raises(BitstreamError, match=match) as info:
        bitstream.decode(data)
    message = str(info.value)
    assert message and "\n" not in message
    return message


# ------------------------------------------------------------------------- packing


@settings(max_examples=200, deadline=None, database=None)
@given(st.integers(1, 20).flatmap(lambda b: st.tuples(st.just(b), st.lists(st.integers(0, 2**b - 1), max_size=300))))
def test_pack_unpack_round_trip(case: tuple[int, list[int]]) -> None:
    bits, values = case
    data = bitstream.pack(np.array(values, dtype=np.int64), bits)
    assert len(data) == bitstream.packed_size(len(values), bits) == math.ceil(len(values) * bits / 8)
    out = bitstream.unpack(data, len(values), bits)
    assert out.dtype == np.int64
    assert out.tolist() == values


def test_pack_is_lsb_first() -> None:
    assert bitstream.pack(np.array([1, 0, 3]), 2) == bytes([0b00110001])
    assert bitstream.pack(np.array([1023]), 10) == bytes([0xFF, 0x03])


# ------------------------------------------------------------------------- round trips


@settings(max_examples=60, deadline=None, database=None)
@given(stages=st.integers(1, 6), frames=st.integers(0, 80),
       levels=st.lists(st.integers(2, 16), min_size=1, max_size=6), seed=st.integers(0, 2**32 - 1))
def test_encode_decode_round_trip(stages: int, frames: int, levels: list[int], seed: int) -> None:
    header = make_header(stages, frames, levels)
    idx = np.random.default_rng(seed).integers(0, header.codebook_size, (stages, frames))
    data = bitstream.encode(header, idx)
    prefix_and_head = 9 + struct.unpack_from("<I", data, 5)[0]
    assert len(data) == prefix_and_head + math.ceil(stages * frames * header.bits_per_code / 8) + 4
    parsed, out = bitstream.decode(data)
    assert asdict(parsed) == asdict(header)
    assert out.shape == (stages, frames) and np.array_equal(out, idx)


def test_entropy_coded_payload_round_trip() -> None:
    header = make_header(entropy="lm", lm_id="lm-abc")
    data = bitstream.encode(header, payload=b"\x01\x02\x03")
    parsed, payload = bitstream.decode(data)
    assert payload == b"\x01\x02\x03" and parsed.lm_id == "lm-abc" and parsed.payload_bytes == 3


def test_read_and_read_header_name_the_file(tmp_path: Path) -> None:
    data, idx = make_stream()
    path = tmp_path / "a.fsqa"
    path.write_bytes(data)
    header, out = bitstream.read(path)
    assert np.array_equal(out, idx) and bitstream.read_header(path).frames == 20
    path.write_bytes(data[:-1])
    with pytest.raises(BitstreamError, match="a.fsqa"):
        bitstream.read(path)
    with pytest.raises(BitstreamError, match="no such file"):
        bitstream.read(tmp_path / "missing.fsqa")
    with pytest.raises(BitstreamError, match="directory"):
        bitstream.read(tmp_path)


def test_encode_rejects_wrong_shapes() -> None:
    with pytest.raises(ValueError):
        bitstream.encode(make_header(3, 20), np.zeros((2, 20), dtype=np.int64))


# ------------------------------------------------------------------------- damaged streams


def test_every_truncation_is_an_error() -> None:
    data, _ = make_stream()
    for n in range(len(data)):
        assert_bitstream_error(data[:n])


def test_every_flipped_byte_is_an_error() -> None:
    data, _ = make_stream()
    for pos in range(len(data)):
        for mask in (0x01, 0x80, 0xFF):
            damaged = bytearray(data)
            damaged[pos] ^= mask
            assert_bitstream_error(bytes(damaged))


def test_unknown_version() -> None:
    data, _ = make_stream()
    for version in (0, 2, 255):
        damaged = data[:4] + bytes([version]) + data[5:]
        assert "version" in assert_bitstream_error(damaged)


def test_a_wav_file_is_not_fsqa(tmp_path: Path) -> None:
    wav = tmp_path / "speech.wav"
    sf.write(wav, np.zeros(1600, dtype=np.float32), 16000)
    assert "magic" in assert_bitstream_error(wav.read_bytes())
    with pytest.raises(BitstreamError, match="speech.wav"):
        bitstream.read(wav)
    assert_bitstream_error(b"")
    assert_bitstream_error(b"FSQ")


def test_appended_bytes_are_an_error() -> None:
    data, _ = make_stream()
    for extra in (b"\x00", b"garbage", data):
        assert "unexpected bytes" in assert_bitstream_error(data + extra)


def test_header_fields_are_validated() -> None:
    good = asdict(make_header(2, 4))
    payload = bitstream.pack(np.zeros(8, dtype=np.int64), good["bits_per_code"])
    good["payload_bytes"] = len(payload)
    bitstream.decode(raw_stream(good, payload))  # the baseline is valid
    bad_values = {"frames": -1, "stages": 0, "bits_per_code": 9, "levels": [8, 1], "sample_rate": 0,
                  "orig_channels": 0, "entropy": "zip", "samples": 1.5, "model_id": 7, "levels ": [8]}
    for key, value in bad_values.items():
        assert_bitstream_error(raw_stream({**good, key: value}, payload))
    missing = {k: v for k, v in good.items() if k != "levels"}
    assert_bitstream_error(raw_stream(missing, payload))
    assert_bitstream_error(raw_stream([1, 2, 3], payload))  # not an object
    assert_bitstream_error(raw_stream({**good, "payload_bytes": 999}, payload))


def test_codes_outside_the_codebook_are_an_error() -> None:
    meta = asdict(make_header(1, 3))  # codebook 1000, 10 bits: 1023 is representable but invalid
    payload = bitstream.pack(np.array([1, 1023, 2]), 10)
    meta["payload_bytes"] = len(payload)
    assert "outside the codebook" in assert_bitstream_error(raw_stream(meta, payload))


def test_deeply_nested_header_is_an_error() -> None:
    head = b"[" * 30000 + b"]" * 30000  # within MAX_HEADER
    data = struct.pack("<4sBI", b"FSQA", 1, len(head)) + head + struct.pack("<I", zlib.crc32(head))
    assert_bitstream_error(data)


# ------------------------------------------------------------------------- fuzzing


def _mutate(data: bytes, meta: dict, payload: bytes, rng: random.Random) -> bytes:
    """One random mutation: byte damage, cuts, insertions, or a re-checksummed odd header."""
    kind = rng.randrange(7)
    b = bytearray(data)
    if kind == 0:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(len(b))] = rng.randrange(256)
    elif kind == 1:
        del b[rng.randrange(len(b)):]
    elif kind == 2:
        pos = rng.randrange(len(b) + 1)
        b[pos:pos] = rng.randbytes(rng.randint(1, 16))
    elif kind == 3:
        lo = rng.randrange(len(b))
        del b[lo: lo + rng.randint(1, 16)]
    elif kind == 4:  # a header field set to an odd value, with a correct CRC
        odd = rng.choice([None, -1, 0, 1, 2**31, 2**63, 10**30, 1e308, -0.5, True, "", "x", [], [0], [2] * 70,
                          [65537], {}, {"a": 1}, "fixed", "lm"])
        key = rng.choice(list(meta) + ["unknown"])
        return raw_stream({**meta, key: odd}, payload)
    elif kind == 5:  # random bytes as the header, correct length and CRC
        head = rng.randbytes(rng.randint(0, 64))
        crc = zlib.crc32(payload, zlib.crc32(head))
        return struct.pack("<4sBI", b"FSQA", 1, len(head)) + head + payload + struct.pack("<I", crc)
    else:  # a lying length field
        struct.pack_into("<I", b, 5, rng.choice([0, 1, len(b), 2**16, 2**16 + 1, 2**32 - 1, rng.randrange(2**32)]))
    return bytes(b)


def _fuzz(cases: int, seed: int) -> None:
    rng = random.Random(seed)
    streams = []
    for stages, frames in ((1, 1), (3, 20), (2, 0), (6, 7)):
        header = make_header(stages, frames)
        idx = np.random.default_rng(stages).integers(0, header.codebook_size, (stages, frames))
        data = bitstream.encode(header, idx)
        streams.append((data, asdict(header), bitstream.pack(idx, header.bits_per_code)))
    for _ in range(cases):
        data, meta, payload = rng.choice(streams)
        mutated = _mutate(data, meta, payload, rng)
        try:
            header, idx = bitstream.decode(mutated)
        except BitstreamError as exc:
            assert str(exc) and "\n" not in str(exc)
            continue
        # anything accepted must be self-consistent
        if header.entropy == "fixed":
            assert idx.shape == (header.stages, header.frames)
            assert idx.size == 0 or (idx.min() >= 0 and idx.max() < header.codebook_size)


def test_fuzz_only_bitstream_errors_escape() -> None:
    _fuzz(3000, seed=0)


@pytest.mark.slow
def test_fuzz_only_bitstream_errors_escape_100k() -> None:
    _fuzz(100_000, seed=1)
