"""Trainer: resume continues exactly, SIGKILL leaves only complete checkpoints, export works."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from safetensors.torch import load_file

from fsq_audio.models.codec import Codec
from fsq_audio.train import checkpoints
from fsq_audio.train.config_io import load_train_config
from fsq_audio.train.trainer import train

REPO = Path(__file__).resolve().parents[2]
TINY = REPO / "recipes" / "tiny.yaml"


@pytest.fixture(scope="module")
def speech_dir(tmp_path_factory) -> Path:
    """Four short speech-like files (harmonic tones with a syllable envelope and noise)."""
    d = tmp_path_factory.mktemp("speech")
    rng = np.random.default_rng(0)
    sr = 16000
    for i in range(4):
        t = np.arange(int(sr * (1.0 + 0.3 * i))) / sr
        f0 = 110 + 40 * i + 20 * np.sin(2 * np.pi * 3 * t)
        phase = 2 * np.pi * np.cumsum(f0) / sr
        x = sum(np.sin(k * phase) / k for k in range(1, 8)) * (0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2)
        x = 0.3 * x / np.abs(x).max() + 0.01 * rng.standard_normal(len(t))
        sf.write(d / f"utt{i}.wav", x.astype(np.float32), sr, subtype="PCM_16")
    return d


def tiny_config(run_dir: Path, data: Path, **extra):
    sets = [f"run_dir={run_dir}", f"data.train=[{data}]", f"data.valid=[{data}]", "adversarial_start=0",
            "loss.mpd_periods=[2,3]", "loss.mrd_ffts=[256,512]", "ema_decay=0.9"]
    sets += [f"{k}={v}" for k, v in extra.items()]
    return load_train_config(TINY, sets)


def test_resume_continues_exactly(tmp_path, speech_dir):
    straight = tiny_config(tmp_path / "a", speech_dir, max_steps=5, save_every=3, valid_every=0)
    train(straight)
    first = tiny_config(tmp_path / "b", speech_dir, max_steps=3, save_every=3, valid_every=0)
    train(first)
    assert checkpoints.read_state(checkpoints.latest_checkpoint(tmp_path / "b"))["step"] == 3
    resumed = tiny_config(tmp_path / "b", speech_dir, max_steps=5, save_every=3, valid_every=0)
    with pytest.raises(Exception, match="--resume"):
        train(resumed)
    train(resumed, resume=True)
    a, b = checkpoints.latest_checkpoint(tmp_path / "a"), checkpoints.latest_checkpoint(tmp_path / "b")
    assert checkpoints.read_state(a) == checkpoints.read_state(b)
    assert checkpoints.read_state(b)["step"] == 5
    for name in ("model.safetensors", "model_1.safetensors", "ema.safetensors"):
        wa, wb = load_file(str(a / name)), load_file(str(b / name))
        assert wa.keys() == wb.keys()
        for k in wa:
            torch.testing.assert_close(wa[k], wb[k], rtol=0, atol=0, msg=f"{name}:{k}")
    oa = torch.load(a / "optimizer.bin", weights_only=True)
    ob = torch.load(b / "optimizer.bin", weights_only=True)
    assert oa["param_groups"][0]["lr"] == ob["param_groups"][0]["lr"]
    for k, v in oa["state"].items():
        assert int(v["step"]) == int(ob["state"][k]["step"]) == 5
        torch.testing.assert_close(v["exp_avg"], ob["state"][k]["exp_avg"], rtol=0, atol=0)
    sa = torch.load(a / "scheduler.bin", weights_only=True)
    sb = torch.load(b / "scheduler.bin", weights_only=True)
    assert sa["last_epoch"] == sb["last_epoch"] == 5 and sa["_last_lr"] == sb["_last_lr"]


def test_export_loads_and_compresses(tmp_path, speech_dir):
    cfg = tiny_config(tmp_path / "run", speech_dir, max_steps=2, save_every=2, valid_every=2)
    train(cfg)
    assert (tmp_path / "run" / "valid.jsonl").is_file() and (tmp_path / "run" / "config.yaml").is_file()
    out = tmp_path / "release"
    cli = [sys.executable, "-m", "fsq_audio"]
    subprocess.run(cli + ["export", str(tmp_path / "run"), "-o", str(out)], check=True)
    codec = Codec.from_pretrained(str(out))
    assert codec.config.name == "tiny"
    wav = speech_dir / "utt1.wav"
    subprocess.run(cli + ["compress", str(wav), "-o", str(tmp_path / "x.fsqa"), "--model", str(out)], check=True)
    subprocess.run(cli + ["decompress", str(tmp_path / "x.fsqa"), "-o", str(tmp_path / "x.wav"), "--model", str(out)],
                   check=True)
    assert sf.info(str(tmp_path / "x.wav")).frames == sf.info(str(wav)).frames


def test_milestone_exports_keep_the_model_card(tmp_path, speech_dir):
    release = tmp_path / "release"
    release.mkdir()
    (release / "README.md").write_text("# model card\n")
    cfg = tiny_config(tmp_path / "run", speech_dir, max_steps=2, save_every=0, valid_every=0,
                      export_every=1, export_dir=str(release))
    train(cfg)
    assert (release / "README.md").read_text() == "# model card\n"
    assert Codec.from_pretrained(str(release)).config.name == "tiny"
    assert not release.with_name("release.tmp").exists() and not release.with_name("release.old").exists()


def test_unknown_key_fails(tmp_path):
    with pytest.raises(Exception, match="unknown config key"):
        load_train_config(TINY, ["model.nope=1"])


def test_sigkill_leaves_complete_checkpoints(tmp_path, speech_dir):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "fsq_audio", "train", str(TINY), "--set", f"run_dir={run}",
            "--set", f"data.train=[{speech_dir}]", "--set", "max_steps=100000", "--set", "save_every=2",
            "--set", "valid_every=0", "--set", "keep_checkpoints=2"]
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.time() + 300
    try:
        while time.time() < deadline and len(checkpoints.list_checkpoints(run)) < 2:
            time.sleep(0.2)
        time.sleep(0.3)  # somewhere between (or inside) later checkpoints
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()
    done = checkpoints.list_checkpoints(run)
    assert len(done) >= 2, "training never checkpointed"
    for ckpt in done:  # every visible checkpoint is complete
        assert (ckpt / "model.safetensors").is_file() and (ckpt / checkpoints.STATE_FILE).is_file()
    step = checkpoints.read_state(done[-1])["step"]
    resumed = subprocess.run(args[:9] + ["--set", f"max_steps={step + 1}", "--resume"], capture_output=True,
                             text=True, timeout=300)
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert f"resumed from {done[-1]} at step {step}" in resumed.stdout + resumed.stderr
    assert not [p for p in (run / "checkpoints").iterdir() if p.name.startswith(".tmp-")]
    assert checkpoints.read_state(checkpoints.latest_checkpoint(run))["step"] == step + 1


def test_sigterm_saves_checkpoint(tmp_path, speech_dir):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "fsq_audio", "train", str(TINY), "--set", f"run_dir={run}",
            "--set", f"data.train=[{speech_dir}]", "--set", "max_steps=100000", "--set", "save_every=0",
            "--set", "valid_every=0"]
    proc = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    deadline = time.time() + 300
    while time.time() < deadline and not (run / "train.jsonl").is_file():
        time.sleep(0.2)
    proc.send_signal(signal.SIGTERM)
    out, _ = proc.communicate(timeout=300)
    assert proc.returncode == 0, out[-2000:]
    assert "checkpoint saved" in out
    assert checkpoints.latest_checkpoint(run) is not None


def test_logs_carry_quantizer_penalties_and_code_entropy(tmp_path, speech_dir):
    import json

    cfg = tiny_config(tmp_path / "run", speech_dir, max_steps=2, save_every=0, valid_every=2, log_every=1,
                      adversarial_start=1000)
    train(cfg)
    rows = [json.loads(line) for line in (tmp_path / "run" / "train.jsonl").read_text().splitlines()]
    assert {"quant/usage", "quant/saturation", "code/distinct_s1"} <= set(rows[-1])
    assert 0.0 <= rows[-1]["quant/usage"] <= 1.0 and rows[-1]["quant/saturation"] >= 0.0
    valid = json.loads((tmp_path / "run" / "valid.jsonl").read_text().splitlines()[-1])
    stages = cfg.model.num_stages
    for n in (1, stages):
        assert 0.0 <= valid[f"valid/code_bits_stage{n}"] <= 16.0


def test_quantizer_penalties_reach_the_input_projections(speech_dir):
    """The penalties are differentiable down to the projections they must steer."""
    from fsq_audio.models.codec import Codec

    cfg = tiny_config(Path("unused"), speech_dir)
    torch.manual_seed(0)
    codec = Codec(cfg.model).train()
    wav = torch.randn(2, 1, 4 * cfg.model.hop_length)
    _, _, aux = codec(wav, return_aux=True)
    (aux["quant/usage"] + aux["quant/saturation"]).backward()
    grad = codec.quantizer.project_in[0].weight.grad
    assert grad is not None and float(grad.abs().sum()) > 0
