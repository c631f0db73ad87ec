"""Peer codecs built from their PyPI packages, with random weights, for speed comparisons.

EnCodec (``encodec``) and DAC (``descript-audio-codec``) import torchaudio / audiotools from
their package ``__init__`` files, and torchaudio cannot sit next to a CPU-only torch here.
Their model code itself is plain torch. So when torchaudio is absent we load their real
source files from the installed packages, skipping only:

* the package ``__init__`` modules (they only re-export and import the I/O helpers),
* the ``import torchaudio`` line of ``encodec/utils.py`` (used only by its audio I/O helpers),
* in ``dac/model/dac.py``: the ``audiotools`` / ``.base`` imports and the ``DAC`` wrapper class,
  whose ``__init__``/``encode``/``decode`` we repeat in :class:`DacPeer` line for line.

No module is stubbed and no upstream code is changed; every layer that runs is the
upstream one. When torchaudio and audiotools are importable the stock classes are used.
Install the peers with ``benchmarks/setup_peers.sh`` (a separate ``.venv-bench``).
"""

from __future__ import annotations

import ast
import importlib
import importlib.machinery
import importlib.util
import math
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Iterable

import torch
from torch import nn


@dataclass
class CodecRunner:
    """What the speed benchmark needs from a codec.

    Attributes:
        name: label used in the tables.
        sample_rate: rate the model consumes (clips are resampled to it).
        kbps: bitrate of the configuration measured.
        encode: ``wav (1, 1, T) -> codes`` (anything ``decode`` accepts).
        decode: ``codes -> wav (1, 1, T')``.
        params: number of parameters (encoder + quantiser + decoder).
        note: how it was built.
    """

    name: str
    sample_rate: int
    kbps: float
    encode: Callable[[torch.Tensor], Any]
    decode: Callable[[Any], torch.Tensor]
    params: int
    note: str = ""


def _has(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise ImportError(f"package {name!r} is not installed (run benchmarks/setup_peers.sh)")
    return Path(list(spec.submodule_search_locations)[0])


def _bare_package(name: str, path: Path) -> types.ModuleType:
    """Register package ``name`` at ``path`` without running its ``__init__.py``."""
    if name in sys.modules:
        return sys.modules[name]
    spec = importlib.machinery.ModuleSpec(name, None, is_package=True)
    spec.submodule_search_locations = [str(path)]
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    return module


def load_source(name: str, path: Path, skip_imports: Iterable[str] = (),
                skip_defs: Iterable[str] = ()) -> types.ModuleType:
    """Execute an upstream source file as module ``name`` minus some top-level statements.

    Args:
        name: dotted module name (its parent package must be in ``sys.modules``).
        path: the installed ``.py`` file.
        skip_imports: modules whose top-level ``import``/``from ... import`` lines are left out
            (relative ones written as in the file, e.g. ``".base"``).
        skip_defs: names of top-level classes/functions left out.

    Returns:
        The module, registered in ``sys.modules``.
    """
    skip_imports, skip_defs = set(skip_imports), set(skip_defs)
    tree = ast.parse(path.read_text(), filename=str(path))

    def keep(node: ast.stmt) -> bool:
        if isinstance(node, ast.Import):
            return not any(a.name in skip_imports for a in node.names)
        if isinstance(node, ast.ImportFrom):
            return "." * node.level + (node.module or "") not in skip_imports
        if isinstance(node, (ast.ClassDef, ast.FunctionDef)):
            return node.name not in skip_defs
        return True

    tree.body = [n for n in tree.body if keep(n)]
    module = types.ModuleType(name)
    module.__file__ = str(path)
    module.__package__ = name.rpartition(".")[0]
    sys.modules[name] = module
    exec(compile(tree, str(path), "exec"), module.__dict__)  # noqa: S102 - upstream source
    return module


def _param_count(*modules: nn.Module) -> int:
    return sum(p.numel() for m in modules for p in m.parameters())


def encodec_24khz(bandwidth: float = 6.0) -> CodecRunner:
    """EnCodec 24 kHz (causal, weight norm, no segmenting) at ``bandwidth`` kbps, random weights."""
    if _has("torchaudio"):
        from encodec.model import EncodecModel
        how = "stock encodec package"
    else:
        root = _package_dir("encodec")
        _bare_package("encodec", root)
        load_source("encodec.utils", root / "utils.py", skip_imports={"torchaudio"})
        EncodecModel = importlib.import_module("encodec.model").EncodecModel  # noqa: N806
        how = "encodec source, package __init__ and torchaudio import skipped"
    model = EncodecModel.encodec_model_24khz(pretrained=False).eval()
    model.set_target_bandwidth(bandwidth)
    return CodecRunner(
        name=f"EnCodec 24k {bandwidth:g} kbps",
        sample_rate=model.sample_rate,
        kbps=bandwidth,
        encode=model.encode,
        decode=model.decode,
        params=_param_count(model),
        note=how,
    )


def _dac_classes() -> tuple[type, type, type, Callable]:
    """(Encoder, Decoder, ResidualVectorQuantize, init_weights) from the installed ``dac``."""
    if _has("torchaudio") and _has("audiotools"):
        from dac.model import dac as dac_model
        from dac.nn.quantize import ResidualVectorQuantize
    else:
        root = _package_dir("dac")
        for sub in ("", ".nn", ".model"):
            _bare_package("dac" + sub, root / sub.lstrip("."))
        ResidualVectorQuantize = importlib.import_module("dac.nn.quantize").ResidualVectorQuantize  # noqa: N806
        dac_model = load_source(
            "dac.model.dac", root / "model" / "dac.py",
            skip_imports={"audiotools", "audiotools.ml", ".base"}, skip_defs={"DAC"},
        )
    return dac_model.Encoder, dac_model.Decoder, ResidualVectorQuantize, dac_model.init_weights


class DacPeer(nn.Module):
    """``dac.DAC`` minus its audiotools base classes: same submodules, same init, same calls.

    Args:
        encoder_rates / decoder_rates / encoder_dim / decoder_dim / n_codebooks /
        codebook_size / codebook_dim / latent_dim / sample_rate: as ``dac.DAC``.
    """

    def __init__(self, encoder_dim: int = 64, encoder_rates: tuple[int, ...] = (2, 4, 5, 8),
                 latent_dim: int | None = None, decoder_dim: int = 1536,
                 decoder_rates: tuple[int, ...] = (8, 5, 4, 2), n_codebooks: int = 12,
                 codebook_size: int = 1024, codebook_dim: int = 8, sample_rate: int = 16000):
        super().__init__()
        encoder_cls, decoder_cls, rvq_cls, init_weights = _dac_classes()
        if latent_dim is None:
            latent_dim = encoder_dim * (2 ** len(encoder_rates))
        self.sample_rate = sample_rate
        self.hop_length = math.prod(encoder_rates)
        self.n_codebooks, self.codebook_size = n_codebooks, codebook_size
        self.encoder = encoder_cls(encoder_dim, list(encoder_rates), latent_dim)
        self.quantizer = rvq_cls(input_dim=latent_dim, n_codebooks=n_codebooks,
                                 codebook_size=codebook_size, codebook_dim=codebook_dim,
                                 quantizer_dropout=False)
        self.decoder = decoder_cls(latent_dim, decoder_dim, list(decoder_rates))
        self.apply(init_weights)

    def encode(self, wav: torch.Tensor) -> torch.Tensor:
        """``DAC.preprocess`` + ``DAC.encode``: wav ``(B, 1, T)`` -> codes ``(B, N, F)``."""
        right_pad = math.ceil(wav.shape[-1] / self.hop_length) * self.hop_length - wav.shape[-1]
        z = self.encoder(nn.functional.pad(wav, (0, right_pad)))
        _, codes, _, _, _ = self.quantizer(z, None)
        return codes

    def decode(self, codes: torch.Tensor) -> torch.Tensor:
        """``quantizer.from_codes`` + ``DAC.decode`` (as ``DAC.decompress``): -> ``(B, 1, F * hop)``."""
        return self.decoder(self.quantizer.from_codes(codes)[0])


def dac_16khz() -> CodecRunner:
    """DAC 16 kHz (rates 2,4,5,8; dims 64/1536; 12 x 1024 codebooks = 6 kbps), random weights."""
    model = DacPeer().eval()
    kbps = model.n_codebooks * math.log2(model.codebook_size) * model.sample_rate / model.hop_length / 1000
    how = "stock dac classes" if _has("audiotools") else "dac source, audiotools-only parts skipped"
    return CodecRunner(
        name=f"DAC 16k {kbps:g} kbps",
        sample_rate=model.sample_rate,
        kbps=kbps,
        encode=model.encode,
        decode=model.decode,
        params=_param_count(model),
        note=how,
    )


def _our_classes() -> tuple[type, type]:
    try:
        from fsq_audio import Codec, CodecConfig
    except ImportError:  # before the package re-exports them
        from fsq_audio.config import CodecConfig
        from fsq_audio.models.codec import Codec
    return Codec, CodecConfig


def ours(model_dir: str | Path | None = None, stages: int | None = None, config: str = "default") -> CodecRunner:
    """Our codec through its public API, inference-ready (eval, weight norm folded).

    Args:
        model_dir: release dir for ``Codec.from_pretrained``; None builds the default
            architecture with random weights.
        stages: residual stages to encode with (None: all).
        config: without ``model_dir``: "default" (``CodecConfig.default()`` or ``CodecConfig()``)
            or "tiny" (``CodecConfig.tiny()``, for smoke tests).
    """
    codec_cls, config_cls = _our_classes()
    if model_dir:
        codec = codec_cls.from_pretrained(str(model_dir))
    else:
        torch.manual_seed(0)
        codec = codec_cls(getattr(config_cls, config, config_cls)())
    codec = codec.prepare_for_inference() if hasattr(codec, "prepare_for_inference") else codec.eval()
    label = Path(model_dir).name if model_dir else f"{config} (random init)"
    return CodecRunner(
        name=f"fsq_audio {label}",
        sample_rate=int(codec.sample_rate),
        kbps=float(codec.bitrate(stages)) / 1000,
        encode=lambda wav: codec.encode(wav, stages=stages),
        decode=codec.decode,
        params=_param_count(codec),
        note=str(codec.model_id) if model_dir else "random weights",
    )
