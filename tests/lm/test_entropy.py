"""LM arithmetic coding: exact round trips, identity checks, and the .fsqa integration."""

from __future__ import annotations

import numpy as np
import pytest
from lm_helpers import DEV_DATA, save_tiny_lm, tiny_lm_config

from fsq_audio import audio, bitstream
from fsq_audio.api import compress_file, decompress_file, read_indices
from fsq_audio.errors import BitstreamError, ModelError
from fsq_audio.lm.entropy import FREQ_TOTAL, LMEntropyCoder, quantize_probabilities
from fsq_audio.lm.model import TokenLM



def _coder(seed: int = 0, **overrides) -> LMEntropyCoder:
    import torch

    torch.manual_seed(seed)
    return LMEntropyCoder(TokenLM(tiny_lm_config("c-0", **overrides)).eval(), f"lm-{seed}")


def test_quantized_frequencies_are_positive_and_bounded():
    import torch

    freq = quantize_probabilities(torch.tensor([50.0, 0.0, -50.0, -1e9]))
    assert freq.min() >= 1 and freq.sum() <= FREQ_TOTAL and np.all(freq == np.floor(freq))


@pytest.mark.parametrize("stages", [1, 2, 3])
def test_round_trip_synthetic(stages):
    # 8-frame window: the cache slides several times; trained on 2-stage tokens, stage 3 is uniform
    coder = _coder(max_frames=8, stages=2)
    rng = np.random.default_rng(stages)
    idx = rng.integers(0, 1000, (stages, 37))
    idx[:, 10:20] = idx[:, 9:10]  # some predictable runs
    payload = coder.encode(idx)
    assert np.array_equal(coder.decode(payload, stages, 37), idx)
    assert np.array_equal(_coder(factorised=False).decode(_coder(factorised=False).encode(idx), stages, 37), idx)


def test_rejects_bad_input():
    coder = _coder()
    with pytest.raises(ValueError):
        coder.encode(np.full((1, 4), 1000))
    with pytest.raises(BitstreamError):
        coder.decode(b"abc", 1, 4)


def _clips(speech_clip) -> list:
    clips = [speech_clip]
    if DEV_DATA.is_dir():
        clips += sorted(p for p in DEV_DATA.rglob("*") if p.suffix.lower() in audio.AUDIO_EXTENSIONS)[:2]
    return clips


def test_compress_round_trip_through_files(tmp_path, tiny_codec, tiny_lm_dir, speech_clip):
    coder = LMEntropyCoder.from_pretrained(tiny_lm_dir, tiny_codec)
    for i, clip in enumerate(_clips(speech_clip)):
        n_stages = [3, 2, 1][i % 3]  # more, as many and fewer stages than the LM models (2)
        info = audio.info(clip)
        if info.duration > 4:  # keep the test fast: a 4 s excerpt
            x, sr = audio.load(clip, frames=4 * info.sample_rate)
            clip = tmp_path / f"clip{i}.wav"
            audio.save(clip, x, sr)
        plain = compress_file(clip, tmp_path / f"{i}.fixed.fsqa", tiny_codec, n_stages)
        packed = compress_file(clip, tmp_path / f"{i}.lm.fsqa", tiny_codec, n_stages, entropy_coder=coder)
        header = bitstream.read_header(tmp_path / f"{i}.lm.fsqa")
        assert header.entropy == "lm" and header.lm_id == coder.id
        _, indices = read_indices(tmp_path / f"{i}.lm.fsqa", tiny_codec, coder)
        assert np.array_equal(indices, plain["indices"]) and np.array_equal(indices, packed["indices"])
        assert len(np.unique(indices[0])) > 10  # the calibrated codec gives varied tokens
        if i == 0:  # the whole file path once: same audio as the fixed-width stream
            decompress_file(tmp_path / f"{i}.lm.fsqa", tmp_path / f"{i}.lm.wav", tiny_codec, entropy_coder=coder)
            decompress_file(tmp_path / f"{i}.fixed.fsqa", tmp_path / f"{i}.fixed.wav", tiny_codec)
            assert np.array_equal(audio.load(tmp_path / "0.lm.wav")[0], audio.load(tmp_path / "0.fixed.wav")[0])


def test_refuses_other_lm_and_other_codec(tmp_path, tiny_codec, tiny_lm_dir, speech_clip):
    coder = LMEntropyCoder.from_pretrained(tiny_lm_dir, tiny_codec)
    compress_file(speech_clip, tmp_path / "a.fsqa", tiny_codec, 1, entropy_coder=coder)
    other = LMEntropyCoder.from_pretrained(save_tiny_lm(tmp_path / "lm2", tiny_codec.model_id, seed=1), tiny_codec)
    assert other.id != coder.id
    with pytest.raises(ModelError, match="entropy-coded with LM"):
        read_indices(tmp_path / "a.fsqa", tiny_codec, other)
    with pytest.raises(BitstreamError, match="--lm"):
        read_indices(tmp_path / "a.fsqa", tiny_codec, None)
    foreign = save_tiny_lm(tmp_path / "lm3", "another-codec-123456789abc")
    with pytest.raises(ModelError, match="trained on tokens of codec another-codec"):
        LMEntropyCoder.from_pretrained(foreign, tiny_codec)


def test_cli_compress_decompress_with_lm(tmp_path, codec_dir, tiny_lm_dir, speech_clip):
    from fsq_audio.cli import main

    out = tmp_path / "x.fsqa"
    assert main(["compress", str(speech_clip), "-m", str(codec_dir), "--lm", str(tiny_lm_dir),
                 "-o", str(out), "-q"]) == 0
    assert bitstream.read_header(out).entropy == "lm"
    assert main(["decompress", str(out), "-m", str(codec_dir), "--lm", str(tiny_lm_dir),
                 "-o", str(tmp_path / "x.wav"), "-q"]) == 0
    assert main(["decompress", str(out), "-m", str(codec_dir), "-o", str(tmp_path / "y.wav"), "-q"]) == 1


def test_cli_entropy_lm_finds_installed_lm(tmp_path, monkeypatch, capsys, codec_dir, tiny_lm_dir, speech_clip):
    """`--entropy lm` without --lm uses an installed LM trained on the codec; decompress finds it too."""
    import shutil

    from fsq_audio.cli import main

    out = tmp_path / "x.fsqa"
    monkeypatch.setenv("FSQ_AUDIO_MODELS", str(tmp_path / "models"))
    assert main(["compress", str(speech_clip), "-m", str(codec_dir), "--entropy", "lm", "-o", str(out), "-q"]) == 1
    assert "no installed token LM was trained on" in capsys.readouterr().err
    assert not out.exists()
    shutil.copytree(tiny_lm_dir, tmp_path / "models" / "my-lm")
    assert main(["compress", str(speech_clip), "-m", str(codec_dir), "--entropy", "lm", "-o", str(out), "-q"]) == 0
    assert bitstream.read_header(out).entropy == "lm"
    assert main(["decompress", str(out), "-m", str(codec_dir), "-o", str(tmp_path / "x.wav"), "-q"]) == 0
    assert main(["compress", str(speech_clip), "-m", str(codec_dir), "--entropy", "fixed", "--lm", "my-lm",
                 "-o", str(tmp_path / "y.fsqa"), "-q"]) == 1
    assert "--lm is for --entropy lm" in capsys.readouterr().err
    assert main(["compress", str(speech_clip), "-m", str(codec_dir), "--lm", "my-lm",  # by name
                 "-o", str(tmp_path / "z.fsqa"), "-q"]) == 0
    assert bitstream.read_header(tmp_path / "z.fsqa").entropy == "lm"


def test_cli_decompress_finds_the_streams_own_lm(tmp_path, monkeypatch, codec_dir, tiny_codec, tiny_lm_dir,
                                                 speech_clip):
    """With two installed LMs for one codec, decompress picks the one the stream names, whatever
    the file is called."""
    import shutil

    from fsq_audio.cli import main

    models = tmp_path / "models"
    shutil.copytree(tiny_lm_dir, models / "a-lm")
    save_tiny_lm(models / "b-lm", tiny_codec.model_id, seed=1)
    monkeypatch.setenv("FSQ_AUDIO_MODELS", str(models))
    out = tmp_path / "stream.bin"
    assert main(["compress", str(speech_clip), "-m", str(codec_dir), "--lm", "b-lm", "-o", str(out), "-q"]) == 0
    assert main(["decompress", str(out), "-m", str(codec_dir), "-o", str(tmp_path / "x.wav"), "-q"]) == 0
    header, idx = read_indices(out, tiny_codec, LMEntropyCoder.from_pretrained(models / "b-lm", tiny_codec))
    fixed = tmp_path / "fixed.fsqa"
    compress_file(speech_clip, fixed, tiny_codec, header.stages)
    assert np.array_equal(read_indices(fixed, tiny_codec)[1], idx)
