"""Release directories (fsq_audio.checkpoint): save/load round trip, strict loading, no pickle."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file, save_file

from fsq_audio import Codec, CodecConfig, audio
from fsq_audio.checkpoint import FORMAT_VERSION, read_config, resolve_model
from fsq_audio.errors import ModelError


def copy_model(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def model_error(directory: Path) -> str:
    with pytest.raises(ModelError) as info:
        Codec.from_pretrained(str(directory))
    message = str(info.value)
    assert "\n" not in message
    return message


@pytest.fixture()
def speech(speech_clip) -> torch.Tensor:
    return torch.from_numpy(audio.load(speech_clip)[0])[None]


def test_round_trip_gives_same_outputs_and_model_id(tmp_path: Path, speech: torch.Tensor) -> None:
    torch.manual_seed(0)
    model = Codec(CodecConfig.tiny(decoder="conv")).eval()
    assert any("parametrizations" in k for k in model.state_dict())  # weight norm while training
    model.save_pretrained(str(tmp_path / "m"))
    assert any("parametrizations" in k for k in model.state_dict())  # saving does not fold the original
    loaded = Codec.from_pretrained(str(tmp_path / "m"))
    assert not loaded.training
    assert loaded.config == model.config
    assert loaded.model_id == model.model_id
    assert loaded.model_id.startswith("tiny-") and len(loaded.model_id) == len("tiny-") + 12
    idx = model.encode(speech)
    assert torch.equal(loaded.encode(speech), idx)
    assert torch.allclose(loaded.decode(idx), model.decode(idx), atol=1e-5)
    # saving the loaded model again reproduces the same identity and bytes
    loaded.save_pretrained(str(tmp_path / "again"))
    assert Codec.from_pretrained(str(tmp_path / "again")).model_id == model.model_id
    weights = "model.safetensors"
    assert (tmp_path / "again" / weights).read_bytes() == (tmp_path / "m" / weights).read_bytes()


def test_release_layout(tiny_model_dir: Path) -> None:
    names = sorted(p.name for p in tiny_model_dir.iterdir())
    assert names == ["SHA256SUMS", "config.json", "model.safetensors"]
    meta = json.loads((tiny_model_dir / "config.json").read_text())
    assert meta["format_version"] == FORMAT_VERSION and meta["kind"] == "codec"
    assert isinstance(meta["package_version"], str)
    assert meta["config"]["levels"] == [8, 5, 5, 5]
    for line in (tiny_model_dir / "SHA256SUMS").read_text().splitlines():
        digest, name = line.split()
        assert hashlib.sha256((tiny_model_dir / name).read_bytes()).hexdigest() == digest
    state = load_file(str(tiny_model_dir / "model.safetensors"))
    assert not any("parametrizations" in k for k in state)


def test_model_id_tracks_weights_and_config(tmp_path: Path, tiny_model_dir: Path) -> None:
    base = Codec.from_pretrained(str(tiny_model_dir))
    torch.manual_seed(1)
    other_weights = Codec(CodecConfig.tiny())
    other_name = Codec(CodecConfig.tiny(name="tiny2"))
    other_name.load_state_dict(Codec(CodecConfig.tiny()).state_dict())
    ids = {base.model_id, other_weights.model_id, other_name.model_id}
    assert len(ids) == 3


def test_weights_of_another_config_are_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    target = copy_model(tiny_model_dir, tmp_path / "m")
    Codec(CodecConfig.tiny(latent_dim=8)).save_pretrained(str(tmp_path / "other"))
    shutil.copy(tmp_path / "other" / "model.safetensors", target / "model.safetensors")
    assert "do not match" in model_error(target)


def test_missing_and_unexpected_tensors_are_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    state = load_file(str(tiny_model_dir / "model.safetensors"))
    missing = copy_model(tiny_model_dir, tmp_path / "missing")
    save_file({k: v for k, v in state.items() if k != sorted(state)[0]}, str(missing / "model.safetensors"))
    assert "missing" in model_error(missing)
    extra = copy_model(tiny_model_dir, tmp_path / "extra")
    save_file({**state, "bogus.weight": torch.zeros(3)}, str(extra / "model.safetensors"))
    assert "unexpected" in model_error(extra)


def test_pickle_only_directory_is_refused(tmp_path: Path, tiny_model_dir: Path, monkeypatch) -> None:
    target = tmp_path / "pickled"
    target.mkdir()
    shutil.copy(tiny_model_dir / "config.json", target / "config.json")
    torch.save(Codec(CodecConfig.tiny()).state_dict(), target / "model.pt")

    def no_unpickling(*args, **kwargs):
        raise AssertionError("a pickle file was loaded")

    monkeypatch.setattr(torch, "load", no_unpickling)
    message = model_error(target)
    assert "pickle" in message and "model.pt" in message


def test_unknown_config_key_is_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    target = copy_model(tiny_model_dir, tmp_path / "m")
    meta = json.loads((target / "config.json").read_text())
    meta["config"]["attention_heads"] = 4
    (target / "config.json").write_text(json.dumps(meta))
    assert "attention_heads" in model_error(target)
    with pytest.raises(ModelError):
        read_config(target)


@pytest.mark.parametrize("edit", ["format", "json", "kind", "bad_value"])
def test_malformed_config_is_refused(tmp_path: Path, tiny_model_dir: Path, edit: str) -> None:
    target = copy_model(tiny_model_dir, tmp_path / "m")
    meta = json.loads((target / "config.json").read_text())
    text = None
    if edit == "format":
        meta["format_version"] = FORMAT_VERSION + 1
    elif edit == "kind":
        meta["kind"] = "lm"
    elif edit == "bad_value":
        meta["config"]["levels"] = [8, 1]
    else:
        text = '{"format_version": 1, "config": '
    (target / "config.json").write_text(text if text is not None else json.dumps(meta))
    model_error(target)


def test_corrupt_or_missing_files_are_refused(tmp_path: Path, tiny_model_dir: Path) -> None:
    corrupt = copy_model(tiny_model_dir, tmp_path / "corrupt")
    (corrupt / "model.safetensors").write_bytes(b"\x00" * 100)
    assert "safetensors" in model_error(corrupt)
    no_config = copy_model(tiny_model_dir, tmp_path / "no_config")
    (no_config / "config.json").unlink()
    assert "config.json" in model_error(no_config)
    empty = tmp_path / "empty"
    empty.mkdir()
    model_error(empty)
    model_error(tmp_path / "no-such-model")


def test_model_found_by_name_on_the_search_path(tmp_path: Path, tiny_model_dir: Path, monkeypatch) -> None:
    copy_model(tiny_model_dir, tmp_path / "models" / "my-tiny")
    monkeypatch.setenv("FSQ_AUDIO_MODELS", str(tmp_path / "models"))
    monkeypatch.chdir(tmp_path)
    assert resolve_model("my-tiny") == tmp_path / "models" / "my-tiny"
    assert Codec.from_pretrained("my-tiny").model_id == Codec.from_pretrained(str(tiny_model_dir)).model_id


def test_saving_or_folding_a_copy_leaves_the_training_model_intact(tmp_path: Path) -> None:
    """Weight-norm folding of a deep copy (export during training) must not touch the original."""
    import copy

    torch.manual_seed(2)
    model = Codec(CodecConfig.tiny(stage_dropout=0.0)).train()
    wav = 0.1 * torch.randn(2, 1, 3200)
    with torch.no_grad():
        ref = model(wav, n_stages=3)[0]
    first = model.model_id
    model.save_pretrained(str(tmp_path / "m"))
    copy.deepcopy(model).prepare_for_inference()
    assert model.model_id == first
    out, _ = model(wav, n_stages=3)
    assert torch.allclose(out, ref, atol=1e-6)
    out.square().mean().backward()  # still trainable through the weight-norm parametrization
    conv = model.encoder.net[0].conv
    assert conv.parametrizations.weight.original1.grad is not None
