"""Hostile model directories: no pickle is ever loaded, no code in the directory ever runs, and
malformed configs or weights are one-line errors (issue 9, model files).

tests/test_checkpoint.py covers the basic refusals (pickle-only dir with torch.load patched out,
unknown `config` keys, shape/missing/extra tensors, a truncated config.json, zeroed safetensors);
here the pickles and modules are booby-trapped, and configs and weights are made hostile.
"""

from __future__ import annotations

import json
import pickle
import random
import shutil
import struct
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from _robust import assert_one_line_error, run, run_process

from fsq_audio import Codec
from fsq_audio.errors import ModelError


class _Trap:
    """Unpickling this writes a marker file (what a malicious checkpoint would do)."""

    def __init__(self, marker: Path) -> None:
        self.marker = str(marker)

    def __reduce__(self):
        return exec, (f"open({self.marker!r}, 'w').write('pickle ran')",)


def booby_trap(directory: Path, marker: Path) -> None:
    """Python files and pickles in `directory` that would create `marker` if anything ran them."""
    code = f"open({str(marker)!r}, 'w').write('module ran')\n"
    for name in ("__init__.py", "modeling.py", "config.py", "model.py", "torch.py", "safetensors.py",
                 "sitecustomize.py", "fsq_audio.py", "__main__.py"):
        (directory / name).write_text(code)
    for name in ("model.pt", "pytorch_model.bin", "model.ckpt", "weights.pkl"):
        with open(directory / name, "wb") as f:
            pickle.dump(_Trap(marker), f)


@pytest.fixture()
def wav(tmp_path: Path) -> Path:
    path = tmp_path / "in.wav"
    sf.write(path, 0.1 * np.random.default_rng(0).standard_normal(1600).astype(np.float32), 16000)
    return path


def test_trap_works(tmp_path: Path) -> None:
    """The booby trap is real: unpickling it writes the marker."""
    marker = tmp_path / "marker"
    booby_trap(tmp_path, marker)
    with open(tmp_path / "model.pt", "rb") as f:
        pickle.load(f)  # noqa: S301 - that is the point
    assert marker.read_text() == "pickle ran"


def test_release_beside_trapped_files_loads_without_running_them(capsys, tmp_path: Path, tiny_model_dir: Path,
                                                                 wav: Path) -> None:
    model, marker = tmp_path / "model", tmp_path / "marker"
    shutil.copytree(tiny_model_dir, model)
    booby_trap(model, marker)
    assert Codec.from_pretrained(str(model)).model_id == Codec.from_pretrained(str(tiny_model_dir)).model_id
    code, _, err = run(capsys, "compress", wav, "-o", tmp_path / "a.fsqa", "-m", model)
    assert code == 0, err
    proc = run_process("compress", wav, "-o", tmp_path / "b.fsqa", "-m", model, "--threads", "1", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "a.fsqa").read_bytes() == (tmp_path / "b.fsqa").read_bytes()
    assert not marker.exists()


@pytest.mark.parametrize("with_config", [True, False], ids=["with_config", "pickles_only"])
def test_pickle_directory_is_refused_without_unpickling(capsys, tmp_path: Path, tiny_model_dir: Path, wav: Path,
                                                        with_config: bool) -> None:
    model, marker = tmp_path / "model", tmp_path / "marker"
    model.mkdir()
    booby_trap(model, marker)
    if with_config:
        shutil.copy(tiny_model_dir / "config.json", model / "config.json")
    with pytest.raises(ModelError, match="pickle files are never loaded"):
        Codec.from_pretrained(str(model))
    code, _, err = run(capsys, "compress", wav, "-o", tmp_path / "x.fsqa", "-m", model)
    assert_one_line_error(code, err, "model", "pickle")
    assert not marker.exists() and not (tmp_path / "x.fsqa").exists()


def _edit_config(model: Path, edit) -> None:
    meta = json.loads((model / "config.json").read_text())
    result = edit(meta)
    (model / "config.json").write_text(json.dumps(meta if result is None else result))


HOSTILE_CONFIGS = {
    "unknown_top_level_key": (lambda m: m.update(loader="my_module.Loader"), "unknown key"),
    "unknown_model_key": (lambda m: m["config"].update(class_path="evil.Codec"), "class_path"),
    "huge_dims": (lambda m: m["config"].update(decoder_dim=200_000, decoder_intermediate=200_000), "decoder_dim must be an integer"),
    "big_dims_not_matching_weights": (lambda m: m["config"].update(decoder_dim=4096, decoder_intermediate=8192),
                                      "do not match"),
    "stages_over_limit": (lambda m: m["config"].update(num_stages=1_000_000), "num_stages"),
    "zero_window": (lambda m: m["config"].update(encode_window_frames=0), "encode_window_frames"),
    "negative_kernel": (lambda m: m["config"].update(encoder_kernel=-1), "config.json"),
    "zero_latent": (lambda m: m["config"].update(latent_dim=0), "config.json"),
    "zero_istft_hop": (lambda m: m["config"].update(istft_hop=0), "config.json"),
    "string_for_int": (lambda m: m["config"].update(num_stages="3"), "num_stages"),
    "bool_for_int": (lambda m: m["config"].update(num_stages=True), "num_stages"),
    "config_is_a_list": (lambda m: m.update(config=[1, 2]), "config.json"),
    "top_level_is_a_list": (lambda m: [m], "config.json"),
    "other_kind": (lambda m: m.update(kind="lm"), "config.json"),
    "future_format": (lambda m: m.update(format_version=99), "format_version"),
}


@pytest.mark.parametrize("case", list(HOSTILE_CONFIGS))
def test_hostile_config_is_a_one_line_error(capsys, tmp_path: Path, tiny_model_dir: Path, wav: Path,
                                            case: str) -> None:
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    booby_trap(model, tmp_path / "marker")
    edit, needle = HOSTILE_CONFIGS[case]
    _edit_config(model, edit)
    code, _, err = run(capsys, "compress", wav, "-o", tmp_path / "x.fsqa", "-m", model)
    assert_one_line_error(code, err, needle)
    assert not (tmp_path / "marker").exists() and not (tmp_path / "x.fsqa").exists()


@pytest.mark.parametrize("content", [b"", b"\x89PNG\r\n\x1a\n" + bytes(range(256)), b"[" * 5000 + b"]" * 5000,
                                     b"[" * 100_000, "{\"format_version\": 1, \u00e9".encode("latin-1"), None],
                         ids=["empty", "binary", "deeply_nested", "unclosed", "not_utf8", "a_directory"])
def test_config_json_that_is_not_json(capsys, tmp_path: Path, tiny_model_dir: Path, wav: Path,
                                      content: bytes | None) -> None:
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    (model / "config.json").unlink()
    if content is None:
        (model / "config.json").mkdir()
    else:
        (model / "config.json").write_bytes(content)
    code, _, err = run(capsys, "compress", wav, "-o", tmp_path / "x.fsqa", "-m", model)
    assert_one_line_error(code, err, "config.json")


@pytest.mark.parametrize("value", [float("nan"), float("inf")], ids=["nan", "inf"])
def test_non_finite_weights_are_refused(capsys, tmp_path: Path, tiny_model_dir: Path, wav: Path,
                                        value: float) -> None:
    """A release whose weights hold NaN/Inf would turn every file into noise or -1.0: refuse to load it."""
    import torch
    from safetensors.torch import load_file, save_file

    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    state = load_file(str(model / "model.safetensors"))
    key = sorted(state)[len(state) // 2]
    state[key] = torch.full_like(state[key], value)
    save_file(state, str(model / "model.safetensors"), metadata={"format": "pt"})
    code, _, err = run(capsys, "compress", wav, "-o", tmp_path / "x.fsqa", "-m", model)
    assert_one_line_error(code, err, "NaN/Inf weights", key)
    assert not (tmp_path / "x.fsqa").exists()


def _safetensors_damage(good: bytes, rng: random.Random) -> bytes:
    (n,) = struct.unpack_from("<Q", good)
    head = json.loads(good[8: 8 + n])
    keys = [k for k in head if k != "__metadata__"]
    kind, b = rng.randrange(6), bytearray(good)
    if kind == 0:
        return rng.randbytes(rng.randint(0, 300))
    if kind == 1:
        return good[: rng.randrange(len(good))]
    if kind == 2:
        struct.pack_into("<Q", b, 0, rng.choice([0, 1, n - 1, n + 1, 2**63, 2**64 - 1, rng.randrange(2**40)]))
        return bytes(b)
    if kind == 3:
        for _ in range(rng.randint(1, 4)):
            b[rng.randrange(8, 8 + n)] = rng.randrange(256)
        return bytes(b)
    key = rng.choice(keys)
    if kind == 4:
        head[key]["dtype"] = rng.choice(["F64", "I64", "BOOL", "U8", "F16", "XX", 5, None])
    else:
        odd = rng.choice([[], [-1], [2**40, 2**40], [0, 2**62], [10, 5], "x"])
        head[key][rng.choice(["shape", "data_offsets"])] = odd
    raw = json.dumps(head).encode()
    return struct.pack("<Q", len(raw)) + raw + good[8 + n:]


def test_garbage_safetensors_is_a_model_error(tmp_path: Path, tiny_model_dir: Path) -> None:
    """80 damaged weight files: each is refused with a ModelError naming the file (or, where only
    ignored bytes changed, loads); nothing else escapes."""
    model = shutil.copytree(tiny_model_dir, tmp_path / "model")
    good = (tiny_model_dir / "model.safetensors").read_bytes()
    rng, refused = random.Random(0), 0
    for _ in range(80):
        (model / "model.safetensors").write_bytes(_safetensors_damage(good, rng))
        try:
            Codec.from_pretrained(str(model))
        except ModelError as exc:
            assert "model.safetensors" in str(exc)
            refused += 1
    assert refused >= 70


def test_format_version_1_is_refused_with_the_reason(tmp_path):
    import json

    from fsq_audio.checkpoint import read_config
    from fsq_audio.config import CodecConfig, to_dict
    from fsq_audio.errors import ModelError

    (tmp_path / "config.json").write_text(json.dumps({"format_version": 1, "package_version": "0.1.0",
                                                      "kind": "codec", "config": to_dict(CodecConfig.tiny())}))
    with pytest.raises(ModelError, match="format_version 1 .*residual stages"):
        read_config(tmp_path)
