"""generate: sampling filters, and the CLI writing audio of the requested length."""

from __future__ import annotations

import pytest
import torch
from lm_helpers import save_tiny_lm

from fsq_audio import audio
from fsq_audio.cli import main
from fsq_audio.lm.generate import filter_logits


def test_filter_logits():
    logits = torch.tensor([[2.0, 1.0, 0.0, -1.0]])
    assert torch.equal(filter_logits(logits, 0.0), torch.tensor([[1.0, 0, 0, 0]]))
    assert (filter_logits(logits, 1.0, top_k=2)[0, 2:] == 0).all()
    p = filter_logits(logits, 1.0, top_p=0.7)
    assert p[0, 0] > 0 and p[0, 1] > 0 and (p[0, 2:] == 0).all() and torch.isclose(p.sum(), torch.tensor(1.0))


def test_generate_cli(tmp_path, codec_dir, tiny_lm_dir, speech_clip):
    out = tmp_path / "out.wav"
    args = ["generate", "--lm", str(tiny_lm_dir), "-m", str(codec_dir), "--seconds", "1.3", "-o", str(out),
            "--num-samples", "2", "--top-k", "4", "--top-p", "0.9", "--temperature", "0.8", "--seed", "3"]
    assert main(args) == 0
    for i in range(2):
        info = audio.info(tmp_path / f"out_{i}.wav")
        assert info.frames == round(1.3 * 16000) and info.sample_rate == 16000
    assert main(args) == 1  # exists without --force
    prompted = tmp_path / "p.wav"
    assert main(["generate", "--lm", str(tiny_lm_dir), "-m", str(codec_dir), "--prompt", str(speech_clip),
                 "--prompt-seconds", "0.5", "--seconds", "1.0", "-o", str(prompted)]) == 0
    assert audio.info(prompted).frames == 16000


def test_generate_refuses_other_codec(tmp_path, codec_dir, capsys):
    lm = save_tiny_lm(tmp_path / "lm", "another-codec-123456789abc")
    assert main(["generate", "--lm", str(lm), "-m", str(codec_dir), "-o", str(tmp_path / "x.wav")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "trained on tokens of codec another-codec" in err[0]
