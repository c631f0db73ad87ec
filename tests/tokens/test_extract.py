"""Token extraction: equal to Codec.encode and .fsqa indices whatever the batching; resume; bad files."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from fsq_audio import audio, bitstream
from fsq_audio.api import compress_file
from fsq_audio.data.manifest import scan_folder, write_manifest
from fsq_audio.errors import FsqAudioError
from fsq_audio.tokens import extract, load, load_meta, read_shard, tokenize


@pytest.fixture(scope="module")
def reference(clip_dir: Path, codec, tmp_path_factory) -> dict[str, np.ndarray]:
    """id -> indices (S, F) from the .fsqa file of each clip, checked against Codec.encode.

    Both run on one thread, with windows one at a time for Codec.encode: the canonical numerics
    that tokenize reproduces with any number of workers (see fsq_audio.tokens.extract).
    """
    out, ref = tmp_path_factory.mktemp("fsqa"), {}
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        for row in scan_folder(clip_dir)[0]:
            compress_file(row["path"], out / f"{row['id']}.fsqa", codec)
            _, indices = bitstream.read(out / f"{row['id']}.fsqa")
            x, sr = audio.load(row["path"])
            if sr == codec.sample_rate:  # same samples as the streaming reader: Codec.encode must agree
                direct = codec.encode(torch.from_numpy(x)[None], max_windows=1)[0].numpy()
                np.testing.assert_array_equal(direct, indices)
            ref[row["id"]] = indices
    finally:
        torch.set_num_threads(old)
    assert len(ref) >= 3 and any(len(np.unique(v)) > 20 for v in ref.values())  # tokens vary
    return ref


def _tokens(root: Path) -> dict[str, np.ndarray]:
    return {uid: t for uid, t in load(root)}


def _check(root: Path, reference: dict[str, np.ndarray], ids: list[str] | None = None) -> None:
    got = _tokens(root)
    ids = sorted(reference) if ids is None else sorted(ids)
    assert list(got) == ids
    for uid in ids:
        indices = reference[uid]
        assert got[uid].dtype == np.uint16
        np.testing.assert_array_equal(got[uid], indices, err_msg=uid)


@pytest.mark.parametrize("batch_seconds,threads,reverse,subset", [(0.4, 1, False, False), (7.0, 2, True, False),
                                                                 (3.0, 3, False, True)])
def test_tokens_equal_fsqa_and_encode(clip_dir, codec, reference, tmp_path, batch_seconds, threads, reverse, subset):
    threads_before = torch.get_num_threads()
    rows = scan_folder(clip_dir)[0]
    if subset:  # the short, the resampled and one more
        rows = [r for r in rows if r["id"][0] in "mnz"]
    manifest = tmp_path / "in.jsonl"
    write_manifest(manifest, rows[::-1] if reverse else rows)
    ids = [r["id"] for r in rows]
    result = tokenize(manifest, tmp_path / "tok", codec, batch_seconds=batch_seconds, shard_size=3, threads=threads)
    assert torch.get_num_threads() == threads_before
    assert result.complete and not result.failures and result.num_utterances == len(ids)
    _check(tmp_path / "tok", reference, ids)
    meta = load_meta(tmp_path / "tok")
    assert meta["model_id"] == codec.model_id and meta["dtype"] == "uint16" and meta["stages"] == codec.num_stages
    assert meta["total_frames"] == sum(reference[i].shape[1] for i in ids)
    index = [json.loads(line) for line in (tmp_path / "tok" / "index.jsonl").read_text().splitlines()]
    assert [r["id"] for r in index] == sorted(ids)
    shard = read_shard(tmp_path / "tok" / index[-1]["shard"])
    np.testing.assert_array_equal(shard.utterance(len(shard) - 1), reference[index[-1]["id"]])


def test_stages_prefix(clip_dir, codec, reference, tmp_path):
    tokenize(clip_dir, tmp_path / "tok", codec, stages=1, shard_size=100)
    for uid, tokens in load(tmp_path / "tok"):
        np.testing.assert_array_equal(tokens, reference[uid][:1])


def test_resume_after_interruption(clip_dir, codec, tmp_path, monkeypatch):
    tokenize(clip_dir, tmp_path / "full", codec, shard_size=2)
    part = tmp_path / "part"
    r = tokenize(clip_dir, part, codec, shard_size=2, max_shards=1)
    assert not r.complete and r.shards_written == 1 and not (part / "meta.json").exists()
    calls = []
    real_write = extract.fmt.write_shard

    def crash_on_second(path, shard):
        calls.append(path)
        if len(calls) == 2:
            with extract.fmt.atomic_path(path) as tmp:  # die mid-write, as SIGINT would
                tmp.write_bytes(b"half a shard")
                raise KeyboardInterrupt
        real_write(path, shard)

    monkeypatch.setattr(extract.fmt, "write_shard", crash_on_second)
    with pytest.raises(KeyboardInterrupt):
        tokenize(clip_dir, part, codec, shard_size=2)
    assert sorted(p.name for p in part.glob("shard-*")) == ["shard-00000.npz", "shard-00001.npz"]
    assert not list(part.glob(".*.part"))
    (part / ".shard-00002.npz.killed.part").write_bytes(b"left by SIGKILL")
    monkeypatch.setattr(extract.fmt, "write_shard", real_write)
    r = tokenize(clip_dir, part, codec, shard_size=2)
    assert r.complete and r.shards_written == 2
    assert not list(part.glob(".*.part"))
    for name in sorted(p.name for p in (tmp_path / "full").iterdir()):
        assert (part / name).read_bytes() == (tmp_path / "full" / name).read_bytes(), name


def test_rerun_with_other_plan_is_refused(clip_dir, codec, tmp_path):
    tokenize(clip_dir, tmp_path / "tok", codec, shard_size=4)
    with pytest.raises(FsqAudioError, match="stages"):
        tokenize(clip_dir, tmp_path / "tok", codec, shard_size=4, stages=1)
    with pytest.raises(FsqAudioError, match="shard_size"):
        tokenize(clip_dir, tmp_path / "tok", codec, shard_size=3)


def test_bad_files_are_listed_and_others_complete(clip_dir, codec, reference, tmp_path):
    rows = scan_folder(clip_dir)[0]
    (tmp_path / "garbage.wav").write_bytes(b"RIFF\x00\x00 not audio")
    rows.insert(2, {"id": "aa_garbage", "path": str(tmp_path / "garbage.wav")})
    rows.append({"id": "zz_missing", "path": str(tmp_path / "missing.flac")})
    write_manifest(tmp_path / "in.jsonl", rows)
    r = tokenize(tmp_path / "in.jsonl", tmp_path / "tok", codec, shard_size=2)
    assert r.complete and sorted(f["id"] for f in r.failures) == ["aa_garbage", "zz_missing"]
    assert all(f["path"] in f["error"] for f in r.failures)
    _check(tmp_path / "tok", reference)
    listed = [json.loads(line)["id"] for line in (tmp_path / "tok" / "failed.jsonl").read_text().splitlines()]
    assert sorted(listed) == ["aa_garbage", "zz_missing"]
    again = tokenize(tmp_path / "in.jsonl", tmp_path / "tok", codec, shard_size=2)
    assert again.shards_written == 0 and len(again.failures) == 2  # still reported on a re-run


def test_windows_match_codec(codec):
    batcher = extract.WindowBatcher(codec, codec.num_stages, 4, np.dtype(np.uint16))
    for n in (1, 319, 320, 6400, 6401, 20000):
        wav = np.random.default_rng(n).standard_normal(n).astype(np.float32)
        ours = batcher.windows(wav)
        theirs, _, n_win = codec._encode_windows(torch.from_numpy(wav)[None, None])
        assert ours.shape[0] == n_win
        np.testing.assert_array_equal(ours, theirs[:, 0].numpy())
