"""Damaged .fsqa files through `fsq-audio decompress`: exit 1, one line per file, and never a wav.

tests/test_bitstream.py fuzzes the parser itself (3,000 cases by default, 100,000 under `slow`);
this file checks the command line end to end: the output path is absent afterwards, no
temporary file is left, a single file gives exactly one stderr line, and a folder of damaged
streams is reported file by file.
"""

from __future__ import annotations

import json
import random
import struct
import zlib
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _robust import assert_one_line_error, leftovers, run

from fsq_audio import bitstream


@pytest.fixture(scope="module")
def good_stream(tmp_path_factory: pytest.TempPathFactory, tiny_model_dir: Path, speech_clip: Path) -> bytes:
    from fsq_audio.cli import main

    dst = tmp_path_factory.mktemp("stream") / "good.fsqa"
    assert main(["compress", str(speech_clip), "-o", str(dst), "-m", str(tiny_model_dir), "-q"]) == 0
    return dst.read_bytes()


def _rechecksummed(data: bytes, **fields) -> bytes:
    """`data` with header fields replaced and a correct CRC: a crafted stream, not a damaged one."""
    (head_len,) = struct.unpack_from("<I", data, 5)
    meta = {**json.loads(data[9: 9 + head_len]), **fields}
    head = json.dumps(meta).encode()
    payload = data[9 + head_len: -4]
    crc = zlib.crc32(payload, zlib.crc32(head))
    return struct.pack("<4sBI", b"FSQA", 1, len(head)) + head + payload + struct.pack("<I", crc)


#: crafted headers that must be refused although their checksum is right
CRAFTED = [dict(orig_samples=10**12), dict(samples=10**9), dict(frames=1), dict(orig_channels=0),
           dict(orig_channels=65), dict(orig_sample_rate=2**40), dict(levels=[8, 5, 5, 4]), dict(stages=9),
           dict(model_id="someone-else-0123456789ab"), dict(entropy="lm", lm_id="x"), dict(bits_per_code=11),
           dict(payload_bytes=0), dict(sample_rate=48000), dict(orig_sample_rate=1)]


def mutate(data: bytes, rng: random.Random) -> bytes:
    """Byte-level damage (the CRC is left as is) or a crafted-but-invalid header."""
    b = bytearray(data)
    kind = rng.randrange(7)
    if kind == 0:
        for _ in range(rng.randint(1, 8)):
            b[rng.randrange(len(b))] ^= 1 << rng.randrange(8)
    elif kind == 1:
        del b[rng.randrange(len(b)):]
    elif kind == 2:
        pos = rng.randrange(len(b) + 1)
        b[pos:pos] = rng.randbytes(rng.randint(1, 32))
    elif kind == 3:
        lo = rng.randrange(len(b))
        del b[lo: lo + rng.randint(1, 32)]
    elif kind == 4:
        struct.pack_into("<I", b, 5, rng.randrange(2**32))
    elif kind == 5:
        lo = rng.randrange(len(b))
        b[lo: lo + rng.randint(1, 64)] = bytes(min(64, len(b) - lo))
    else:
        return _rechecksummed(data, **rng.choice(CRAFTED))
    return bytes(b) if bytes(b) != data else data[:-1]


def test_each_crafted_header_is_refused(capsys, tmp_path: Path, tiny_model_dir: Path, good_stream: bytes) -> None:
    for i, fields in enumerate(CRAFTED):
        src, out = tmp_path / f"crafted{i}.fsqa", tmp_path / f"crafted{i}.wav"
        src.write_bytes(_rechecksummed(good_stream, **fields))
        code, _, err = run(capsys, "decompress", src, "-o", out, "-m", tiny_model_dir)
        assert_one_line_error(code, err, src.name)
        assert not out.exists(), fields
    assert not leftovers(tmp_path)


def test_damaged_single_files(capsys, tmp_path: Path, tiny_model_dir: Path, good_stream: bytes) -> None:
    """20 damaged files, one CLI call each: one stderr line naming the file, exit 1, no wav."""
    rng = random.Random(9)
    for i in range(20):
        src, out = tmp_path / f"d{i}.fsqa", tmp_path / f"d{i}.wav"
        src.write_bytes(mutate(good_stream, rng))
        code, _, err = run(capsys, "decompress", src, "-o", out, "-m", tiny_model_dir)
        assert_one_line_error(code, err, src.name)
        assert not out.exists()
    assert not leftovers(tmp_path)


def _damaged_folder(tmp_path: Path, tiny_model_dir: Path, good_stream: bytes, cases: int, seed: int, capsys) -> None:
    rng = random.Random(seed)
    src, out = tmp_path / "streams", tmp_path / "wavs"
    src.mkdir()
    (src / "good.fsqa").write_bytes(good_stream)
    for i in range(cases):
        (src / f"bad{i:06d}.fsqa").write_bytes(mutate(good_stream, rng))
    code, _, err = run(capsys, "decompress", src, "-o", out, "-m", tiny_model_dir, "-q")
    assert code == 1 and "Traceback" not in err
    assert f"{cases} of {cases + 1} files failed" in err
    summary = err[err.index("files failed"):].splitlines()[1:]
    assert len(summary) == cases and all(f"bad{i:06d}.fsqa" in line for i, line in enumerate(summary))
    assert sorted(p.name for p in out.rglob("*")) == ["good.wav"]  # nothing else, no temporaries
    assert sf.info(out / "good.wav").frames > 0


def test_damaged_folder(capsys, tmp_path: Path, tiny_model_dir: Path, good_stream: bytes) -> None:
    _damaged_folder(tmp_path, tiny_model_dir, good_stream, 2000, seed=1, capsys=capsys)


@pytest.mark.slow
def test_damaged_folder_100k(capsys, tmp_path: Path, tiny_model_dir: Path, good_stream: bytes) -> None:
    _damaged_folder(tmp_path, tiny_model_dir, good_stream, 100_000, seed=2, capsys=capsys)


@pytest.mark.parametrize("start", ["good_stream", "zeros"])
def test_huge_file_is_refused_without_reading_it(capsys, tmp_path: Path, tiny_model_dir: Path, good_stream: bytes,
                                                 start: str) -> None:
    """An 8 GB (sparse) file named .fsqa: refused after its first 64 KiB, in bounded memory."""
    import resource

    src = tmp_path / "huge.fsqa"
    with open(src, "wb") as f:
        f.write(good_stream if start == "good_stream" else b"\0" * 16)
        f.truncate(8 << 30)
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    code, _, err = run(capsys, "decompress", src, "-o", tmp_path / "huge.wav", "-m", tiny_model_dir)
    assert_one_line_error(code, err, "huge.fsqa", "unexpected bytes" if start == "good_stream" else "magic")
    assert resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before < 500_000  # KiB
    assert not (tmp_path / "huge.wav").exists()


def test_the_parser_fuzz_meets_the_issue_counts() -> None:
    """Issue 9 asks for >= 2,000 parser cases by default and >= 100,000 in a slow run (tests/test_bitstream.py)."""
    import re

    text = (Path(__file__).parents[1] / "test_bitstream.py").read_text()
    default = re.search(r"def test_fuzz_only_bitstream_errors_escape\(\).*?_fuzz\(([\d_]+)", text, re.S)
    slow = re.search(r"@pytest\.mark\.slow\s+def test_fuzz_only_bitstream_errors_escape_100k\(\).*?_fuzz\(([\d_]+)",
                     text, re.S)
    assert default and int(default.group(1)) >= 2000
    assert slow and int(slow.group(1)) >= 100_000


def test_unaltered_stream_still_decodes(tmp_path: Path, good_stream: bytes) -> None:
    """The baseline of the mutations above is valid (so the failures come from the damage)."""
    header, idx = bitstream.decode(good_stream)
    assert idx.shape == (header.stages, header.frames) and np.all(idx < header.codebook_size)
