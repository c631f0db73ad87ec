"""load(), TokenDataset and the tokenize / detokenize command line."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fsq_audio import cli
from fsq_audio.tokens import TokenDataset, load, load_meta, read_shard


@pytest.fixture(scope="module")
def token_dir(clip_dir: Path, codec_dir: Path, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("tok") / "out"
    assert cli.main(["tokenize", str(clip_dir), "-o", str(out), "-m", str(codec_dir), "--shard-size", "3",
                     "--threads", "1", "-q"]) == 0
    return out


def test_load_is_lazy_and_ordered(token_dir):
    meta = load_meta(token_dir)
    items = list(load(token_dir))
    assert len(items) == meta["num_utterances"] and meta["num_shards"] == 3
    assert [i for i, _ in items] == sorted(i for i, _ in items)
    assert sum(t.shape[1] for _, t in items) == meta["total_frames"]
    assert all(t.shape[0] == meta["stages"] and t.dtype == np.uint16 for _, t in items)
    one = list(load(token_dir, stages=1))
    np.testing.assert_array_equal(one[0][1], items[0][1][:1])


def test_dataset_random_crops_are_seeded(token_dir):
    ds = TokenDataset(token_dir, segment_frames=40, seed=3)
    assert len(ds) == load_meta(token_dir)["num_utterances"]
    a = [ds[i] for i in range(len(ds))]
    assert all(x.shape == (3, 40) and x.dtype == torch.int64 for x in a)
    again = TokenDataset(token_dir, segment_frames=40, seed=3)
    assert all(torch.equal(x, y) for x, y in zip(a, (again[i] for i in range(len(again)))))
    ds.set_epoch(1)
    assert not all(torch.equal(x, ds[i]) for i, x in enumerate(a))
    short = [i for i in range(len(ds)) if ds.item_id(i).startswith("n_short")][0]
    assert (ds[short] == -1).any() and (ds[short] >= 0).any()  # 3-frame clip padded with -1
    crop = ds[0]
    full = dict(load(token_dir))[ds.item_id(0)].astype(np.int64)
    starts = [s for s in range(full.shape[1] - 39) if np.array_equal(full[:, s: s + 40], crop.numpy())]
    assert starts  # a crop is a real window of the utterance
    clone = pickle.loads(pickle.dumps(ds))  # DataLoader workers (spawn) get no memory maps
    assert torch.equal(clone[0], ds[0])


def test_dataset_sequential_covers_every_frame(token_dir):
    ds = TokenDataset(token_dir, segment_frames=64, stages=2, random_crop=False)
    total = sum(int((x[0] >= 0).sum()) for x in ds)
    assert total == load_meta(token_dir)["total_frames"]
    whole = TokenDataset(token_dir, segment_frames=None)
    np.testing.assert_array_equal(whole[0].numpy(), next(iter(load(token_dir)))[1])


def test_detokenize_dir_and_npy(token_dir, codec_dir, codec, tmp_path):
    assert cli.main(["detokenize", str(token_dir), "-o", str(tmp_path / "wavs"), "-m", str(codec_dir), "-q"]) == 0
    for uid, tokens in load(token_dir):
        info = sf.info(str(tmp_path / "wavs" / f"{uid}.wav"))
        assert info.samplerate == codec.sample_rate and info.frames == tokens.shape[1] * codec.hop_length
    tokens = next(iter(load(token_dir)))[1][:2]
    np.save(tmp_path / "tts.npy", tokens.astype(np.int64))
    assert cli.main(["detokenize", str(tmp_path / "tts.npy"), "-m", str(codec_dir)]) == 0
    assert sf.info(str(tmp_path / "tts.wav")).frames == tokens.shape[1] * codec.hop_length


def test_detokenize_refuses_other_model(token_dir, other_codec_dir, tmp_path, capsys):
    code = cli.main(["detokenize", str(token_dir), "-o", str(tmp_path / "w"), "-m", str(other_codec_dir)])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(err.splitlines()) == 1 and "tokens were made with model" in err
    assert not (tmp_path / "w").exists()


def test_detokenize_checks_code_range(codec_dir, tmp_path, capsys):
    np.save(tmp_path / "bad.npy", np.array([[0, 5, 1000]]))
    assert cli.main(["detokenize", str(tmp_path / "bad.npy"), "-m", str(codec_dir)]) == 1
    assert "out of range 0..999" in capsys.readouterr().err


def test_tokenize_cli_bad_file_exit_code(clip_dir, codec_dir, tmp_path, capsys):
    src = tmp_path / "in"
    src.mkdir()
    for f in sorted(clip_dir.iterdir())[:2]:
        (src / f.name).write_bytes(f.read_bytes())
    (src / "broken.wav").write_bytes(b"not audio at all")
    out = tmp_path / "out"
    assert cli.main(["tokenize", str(src), "-o", str(out), "-m", str(codec_dir), "--shard-size", "1",
                     "--threads", "1", "-q"]) == 1
    assert "broken.wav" in capsys.readouterr().err
    assert len(list(load(out))) == 2 and len(read_shard(out / "shard-00001.npz")) == 1


@pytest.mark.slow
def test_sigkill_leaves_no_corrupt_shard(clip_dir, codec_dir, tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    out = tmp_path / "out"
    cmd = [sys.executable, "-m", "fsq_audio", "tokenize", str(clip_dir), "-o", str(out), "-m", str(codec_dir),
           "--shard-size", "1", "--threads", "1", "--batch-seconds", "0.4", "-q"]
    proc = subprocess.Popen(cmd, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while not (out / "shard-00001.npz").exists() and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    for shard in out.glob("shard-*.npz"):
        read_shard(shard)  # every finished shard is whole
    assert subprocess.run(cmd).returncode == 0
    assert len(list(load(out))) == len(list(clip_dir.iterdir()))
    assert not list(out.glob(".*.part"))
