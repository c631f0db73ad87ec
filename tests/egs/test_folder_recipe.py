"""egs/folder/run.sh: manifests of any folder of speech, hold-out split, CLI wiring, reruns."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import soundfile as sf
from conftest import SR, speechlike

REPO = Path(__file__).resolve().parents[2]
RUN = REPO / "egs" / "folder" / "run.sh"


def run_recipe(cwd: Path, *options: str, fsq: str | None = None) -> subprocess.CompletedProcess:
    env = dict(os.environ, PYTHON=sys.executable, OMP_NUM_THREADS="1")
    env["FSQ_AUDIO"] = fsq or f"{sys.executable} -m fsq_audio"
    cwd.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["bash", str(RUN), "--nj", "2", *options], cwd=cwd, env=env,
                          capture_output=True, text=True, timeout=120)


def speech_folder(root: Path, n: int = 6) -> Path:
    """n short speech-like files in two subfolders, plus one unreadable file."""
    for i in range(n):
        path = root / f"spk{i % 2}" / f"utt{i}.wav"
        path.parent.mkdir(parents=True, exist_ok=True)
        sf.write(path, speechlike(0.3, seed=i), SR)
    (root / "spk0" / "broken.wav").write_bytes(b"RIFF....")
    return root


def ids(path: Path) -> list[str]:
    return [json.loads(line)["id"] for line in path.read_text().splitlines()]


def test_stage_0_holds_out_valid_files_and_skips_on_rerun(tmp_path):
    data = speech_folder(tmp_path / "speech")
    work = tmp_path / "work"
    res = run_recipe(work, "--data-dir", str(data), "--valid-count", "2", "--stop-stage", "0")
    assert res.returncode == 0, res.stderr
    assert "warning: skipped" in res.stderr and "broken.wav" in res.stderr
    train, valid = ids(work / "data" / "train.jsonl"), ids(work / "data" / "valid.jsonl")
    assert len(train) == 4 and len(valid) == 2
    assert sorted(train + valid) == sorted(ids(work / "data" / "all.jsonl"))
    res = run_recipe(work, "--data-dir", str(data), "--valid-count", "2", "--stop-stage", "0")
    assert res.returncode == 0 and "Stage 0: manifests already done" in res.stderr


def test_stage_0_with_a_valid_folder(tmp_path):
    data = speech_folder(tmp_path / "train")
    dev = speech_folder(tmp_path / "dev", n=2)
    work = tmp_path / "work"
    res = run_recipe(work, "--data-dir", str(data), "--valid-dir", str(dev), "--stop-stage", "0")
    assert res.returncode == 0, res.stderr
    assert len(ids(work / "data" / "train.jsonl")) == 6
    assert ids(work / "data" / "valid.jsonl") == ["spk0_utt0", "spk1_utt1"]


def test_stages_1_to_3_call_the_cli(tmp_path):
    data = speech_folder(tmp_path / "speech")
    work = tmp_path / "work"
    assert run_recipe(work, "--data-dir", str(data), "--stop-stage", "0").returncode == 0
    log = tmp_path / "calls.log"
    fake = tmp_path / "fake-fsq"
    fake.write_text(
        "#!/usr/bin/env bash\n"
        '[ "${2:-}" = --help ] && { echo "usage: fsq-audio $1 [-h] [--opt OPT]"; exit 0; }\n'
        f'echo "$*" >> "{log}"\n'
        'if [ "$1" = export ]; then mkdir -p "$4"; echo "{}" > "$4/config.json"; fi\n'
    )
    fake.chmod(0o755)
    config = tmp_path / "model.yaml"
    config.write_text("{}\n")
    res = run_recipe(work, "--data-dir", str(data), "--stage", "1", "--config", str(config),
                     "--device", "cpu", fsq=str(fake))
    assert res.returncode == 0, res.stderr
    d = work / "data"
    assert log.read_text().splitlines() == [
        f'train {config} --resume --set data.train=["{d}/train.jsonl"] --set data.valid=["{d}/valid.jsonl"] '
        f"--set run_dir={work}/exp/codec",
        "export exp/codec -o exp/model --force",
        "eval --model exp/model --data data/valid.jsonl -o exp/eval --device cpu --force",
        "tokenize data/train.jsonl -o exp/tokens/train --model exp/model",
        "tokenize data/valid.jsonl -o exp/tokens/valid --model exp/model",
    ]


def test_data_dir_and_config_are_required(tmp_path):
    res = run_recipe(tmp_path / "work")
    assert res.returncode != 0 and "give --data-dir" in res.stderr
    data = speech_folder(tmp_path / "speech")
    res = run_recipe(tmp_path / "work", "--data-dir", str(data), "--stop-stage", "1", "--config", "")
    assert res.returncode != 0 and "stage 1 needs --config" in res.stderr
    res = run_recipe(tmp_path / "work", "--stage", "1", "--data-dir", str(data), "--config", "nope.yaml")
    assert res.returncode != 0 and "config nope.yaml not found" in res.stderr
