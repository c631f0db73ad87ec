"""Recipe YAML + `--set key=value` overrides -> TrainConfig (unknown keys fail)."""

from __future__ import annotations

import json
import os
from pathlib import Path

import yaml

from fsq_audio.config import TrainConfig, from_dict, to_dict
from fsq_audio.errors import ConfigError


def _merge(base: dict, over: dict) -> dict:
    out = dict(base)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def read_yaml(path: str | os.PathLike) -> dict:
    """A recipe as a dict; `base: other.yaml` (relative to the file) is merged underneath."""
    path = Path(path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8")) or {}
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such recipe") from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"{path}: invalid YAML ({' '.join(str(exc).split())})") from None
    if not isinstance(data, dict):
        raise ConfigError(f"{path}: a recipe must be a mapping")
    base = data.pop("base", None)
    return _merge(read_yaml(path.parent / base), data) if base else data


def apply_overrides(data: dict, overrides: list[str]) -> dict:
    """Apply `a.b.c=value` overrides (value parsed as YAML) to a nested dict."""
    data = json.loads(json.dumps(data))
    for item in overrides:
        if "=" not in item:
            raise ConfigError(f"--set expects key=value, got {item!r}")
        key, raw = item.split("=", 1)
        node = data
        parts = key.strip().split(".")
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"--set {key}: {part} is not a section")
        node[parts[-1]] = yaml.safe_load(raw)
    return data


def load_train_config(path: str | os.PathLike | None, overrides: list[str] = ()) -> TrainConfig:
    """Recipe file (or defaults when None) plus overrides, validated."""
    data = read_yaml(path) if path else {}
    return from_dict(TrainConfig, apply_overrides(data, list(overrides)))


def save_resolved(config: TrainConfig, run_dir: str | os.PathLike) -> None:
    """Keep the resolved config in the run directory (config.yaml for people, config.json for code)."""
    from fsq_audio.fileio import atomic_write_text

    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    atomic_write_text(run_dir / "config.yaml", yaml.safe_dump(to_dict(config), sort_keys=False))
    atomic_write_text(run_dir / "config.json", json.dumps(to_dict(config), indent=2))


def load_resolved(run_dir: str | os.PathLike) -> TrainConfig:
    path = Path(run_dir) / "config.json"
    if not path.is_file():
        raise ConfigError(f"{run_dir}: not a training run (no config.json)")
    return from_dict(TrainConfig, json.loads(path.read_text()))
