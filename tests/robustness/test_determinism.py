"""Determinism (issue 9): the same input on the same machine gives byte-identical .fsqa files and
token shards across runs, processes and thread counts (`--threads 1` vs `--threads 2`).

The codec is `varied_model_dir` (latents spread over many FSQ cells), so equal bytes mean equal
varied tokens, not one code repeated.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _robust import run, run_process

from fsq_audio import audio, bitstream


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory, speech_clip: Path) -> Path:
    """The speech clip as is, resampled to 44.1 kHz stereo (24-bit), and a 4 s stretch of it."""
    folder = tmp_path_factory.mktemp("det_inputs")
    shutil.copy(speech_clip, folder / "clip.flac")
    x, _ = audio.load(speech_clip, sample_rate=44100)
    sf.write(folder / "stereo44.wav", np.stack([x[0], 0.7 * x[0]], axis=1), 44100, subtype="PCM_24")
    y, _ = audio.load(speech_clip)
    sf.write(folder / "long.wav", np.tile(y[0], 3)[: 16000 * 4], 16000, subtype="PCM_16")
    return folder


def compress_all(capsys, src: Path, out: Path, model: Path, threads: int) -> dict[str, bytes]:
    code, _, err = run(capsys, "compress", src, "-o", out, "-m", model, "--threads", threads, "-q")
    assert code == 0, err
    return {p.name: p.read_bytes() for p in sorted(out.glob("*.fsqa"))}


def test_fsqa_bytes_equal_across_runs_and_threads(capsys, tmp_path: Path, varied_model_dir: Path,
                                                  inputs: Path) -> None:
    one = compress_all(capsys, inputs, tmp_path / "t1", varied_model_dir, 1)
    two = compress_all(capsys, inputs, tmp_path / "t2", varied_model_dir, 2)
    assert sorted(one) == ["clip.fsqa", "long.fsqa", "stereo44.fsqa"]
    assert one == two  # another run in another process: the next test
    _, idx = bitstream.read(tmp_path / "t1" / "long.fsqa")
    assert len(np.unique(idx)) > 20  # the tokens really vary


def test_fsqa_bytes_equal_in_a_separate_process(capsys, tmp_path: Path, varied_model_dir: Path,
                                                inputs: Path) -> None:
    code, _, err = run(capsys, "compress", inputs / "stereo44.wav", "-o", tmp_path / "here.fsqa", "-m",
                       varied_model_dir, "--threads", 1)
    assert code == 0, err
    proc = run_process("compress", inputs / "stereo44.wav", "-o", tmp_path / "there" / "stereo44.fsqa",
                       "-m", varied_model_dir, "--threads", "2", "-q")
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "there" / "stereo44.fsqa").read_bytes() == (tmp_path / "here.fsqa").read_bytes()


def test_decompress_is_repeatable(capsys, tmp_path: Path, varied_model_dir: Path, inputs: Path) -> None:
    fsqa = tmp_path / "clip.fsqa"
    assert run(capsys, "compress", inputs / "clip.flac", "-o", fsqa, "-m", varied_model_dir)[0] == 0
    outs = []
    for i in range(2):
        out = tmp_path / f"clip{i}.wav"
        code, _, err = run(capsys, "decompress", fsqa, "-o", out, "-m", varied_model_dir, "--threads", 1)
        assert code == 0, err
        outs.append(out.read_bytes())
    assert outs[0] == outs[1]


def tokenize(capsys, src: Path, out: Path, model: Path, threads: int) -> dict[str, bytes]:
    code, _, err = run(capsys, "tokenize", src, "-o", out, "-m", model, "--threads", threads, "--shard-size", "2",
                       "-q")
    assert code == 0, err
    return {p.name: p.read_bytes() for p in sorted(out.iterdir()) if p.suffix in (".npz", ".jsonl")}


def test_token_shards_equal_across_threads(capsys, tmp_path: Path, varied_model_dir: Path, inputs: Path) -> None:
    pytest.importorskip("fsq_audio.tokens.cli")
    from fsq_audio.tokens.shards import read_shard

    one = tokenize(capsys, inputs, tmp_path / "t1", varied_model_dir, 1)
    two = tokenize(capsys, inputs, tmp_path / "t2", varied_model_dir, 2)
    assert [n for n in one if n.endswith(".npz")] == ["shard-00000.npz", "shard-00001.npz"]
    assert one == two
    # and the tokens are those of the .fsqa files
    fsqa = tmp_path / "long.fsqa"
    assert run(capsys, "compress", inputs / "long.wav", "-o", fsqa, "-m", varied_model_dir)[0] == 0
    shard = read_shard(tmp_path / "t1" / "shard-00000.npz")  # ids sorted: clip, long | stereo44
    i = list(shard.ids).index("long")
    np.testing.assert_array_equal(shard.utterance(i), bitstream.read(fsqa)[1])
