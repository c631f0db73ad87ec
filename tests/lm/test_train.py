"""lm-train: a few steps on token shards, checkpoints, resume, export, validation in bits."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from fsq_audio.cli import main
from fsq_audio.errors import ConfigError
from fsq_audio.lm.config import load_lm_train_config
from fsq_audio.lm.data import read_meta, split_padding, train_dataset, valid_dataset
from fsq_audio.lm.release import load_lm
from fsq_audio.train import checkpoints

REPO = Path(__file__).resolve().parents[2]
RECIPE = str(REPO / "recipes" / "lm_tiny.yaml")


def test_token_data(token_dir):
    meta = read_meta([str(token_dir)])
    assert meta["stages"] == 3 and meta["levels"] == [8, 5, 5, 5]
    ds = train_dataset([str(token_dir)], 32, min_frames=1, seed=1)
    assert len(ds) == 8
    batch = torch.stack([ds[i] for i in range(len(ds))])
    codes, lengths = split_padding(batch)
    assert codes.shape == (8, 3, 32) and codes.min() >= 0 and (lengths >= 30).all()  # utterances >= 30 frames
    valid = valid_dataset([str(token_dir)], 32)
    codes, lengths = split_padding(torch.stack([valid[i] for i in range(len(valid))]))
    assert int(lengths.sum()) == meta["total_frames"]
    assert len(valid_dataset([str(token_dir)], 32, max_items=3)) == 3


def test_recipe_unknown_key_fails():
    with pytest.raises(ConfigError, match="nope"):
        load_lm_train_config(RECIPE, ["model.nope=1"])
    assert load_lm_train_config(REPO / "recipes" / "lm_small.yaml").model.num_stages == 2


def test_train_resume_export(tmp_path, token_dir):
    run = tmp_path / "run"
    args = ["lm-train", RECIPE, "--set", f"run_dir={run}", "--set", f"data.train=[{token_dir}]",
            "--set", f"data.valid=[{token_dir}]", "--threads", "1"]
    assert main(args) == 0
    assert [p.name for p in checkpoints.list_checkpoints(run)] == ["step-00000002", "step-00000004"]
    rows = [json.loads(line) for line in (run / "valid.jsonl").read_text().splitlines()]
    assert rows[-1]["step"] == 4 and rows[-1]["bits_per_token"] > 0
    assert rows[-1]["bits_per_second"] == pytest.approx(rows[-1]["bits_per_token"] * 2 * 50.0)
    lm, lm_id = load_lm(run / "export")
    assert lm.config.codec_id == "tiny-000000000000" and lm_id.startswith("fsq-lm-tiny-")
    assert main(args) == 1  # checkpoints exist: needs --resume
    assert main(args + ["--resume", "--set", "max_steps=6"]) == 0
    assert checkpoints.read_state(checkpoints.latest_checkpoint(run))["step"] == 6
    assert main(["lm-train", "--export", str(run), "-o", str(tmp_path / "rel")]) == 0
    assert load_lm(tmp_path / "rel")[0].config == lm.config
