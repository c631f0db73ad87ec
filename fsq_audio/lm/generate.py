"""Sampling codec tokens from the LM (unconditional or continuing a prompt) and decoding them.

Sampling follows the model's factorisation: each frame is drawn symbol by symbol (FSQ level by
level with factorised heads), and temperature / top-k / top-p apply to every symbol's
categorical. Only the LM's stages are generated; the codec decodes that stage prefix.
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import torch
from torch import Tensor

from fsq_audio.errors import FsqAudioError, ModelError
from fsq_audio.lm.heads import codes_to_symbols, symbols_to_codes
from fsq_audio.lm.model import TokenLM
from fsq_audio.lm.stream import FrameStream


def filter_logits(logits: Tensor, temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0) -> Tensor:
    """(B, A) logits -> (B, A) probabilities after temperature, top-k and nucleus (top-p) filtering."""
    if temperature <= 0:  # greedy
        return torch.nn.functional.one_hot(logits.argmax(-1), logits.shape[-1]).to(logits.dtype)
    logits = logits / temperature
    if 0 < top_k < logits.shape[-1]:
        kth = logits.topk(top_k, dim=-1).values[:, -1:]
        logits = logits.masked_fill(logits < kth, float("-inf"))
    probs = logits.softmax(-1)
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        drop = sorted_p.cumsum(-1) - sorted_p >= top_p  # keep the smallest set reaching top_p
        probs = probs.masked_fill(torch.zeros_like(drop).scatter(-1, order, drop), 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


@torch.inference_mode()
def generate_tokens(lm: TokenLM, frames: int, batch: int = 1, prompt: Tensor | None = None,
                    temperature: float = 1.0, top_k: int = 0, top_p: float = 1.0,
                    generator: torch.Generator | None = None) -> Tensor:
    """Sample `frames` frames of the LM's stages.

    Args:
        lm: the model (eval mode).
        frames: total frames to return, the prompt included.
        batch: number of samples (ignored if a prompt with B > 1 is given).
        prompt: (B or 1, S, P) codes to continue (S >= num_stages); None for unconditional.

    Returns:
        (B, num_stages, frames) codes; the first P frames are the prompt's.
    """
    cfg = lm.config
    alph = cfg.stage_alphabets
    stream = FrameStream(lm, batch)
    done = torch.zeros(batch, 0, len(cfg.alphabets), dtype=torch.long, device=lm.bos.device)
    if prompt is not None:
        done = codes_to_symbols(prompt[:, : cfg.num_stages].to(lm.bos.device), alph).expand(batch, -1, -1)
        if done.shape[1] >= frames:
            return symbols_to_codes(done[:, :frames], alph)
        stream.extend(done)
    out = [done]
    for t in range(done.shape[1], frames):
        frame = torch.zeros(batch, len(cfg.alphabets), dtype=torch.long, device=done.device)
        for j in range(frame.shape[1]):
            probs = filter_logits(lm.head.step(stream.ctx, frame[:, :j]).float(), temperature, top_k, top_p)
            frame[:, j] = torch.multinomial(probs, 1, generator=generator)[:, 0]
        out.append(frame[:, None])
        if t + 1 < frames:
            stream.push(frame)
    return symbols_to_codes(torch.cat(out, dim=1), alph)


def load_codec_for(lm: TokenLM, model: str | None):
    """The codec to decode with: `model`, or the installed codec named by the LM; must match the LM."""
    from fsq_audio.lm.release import check_codec
    from fsq_audio.models.codec import Codec

    if model is None:
        name = lm.config.codec_id.rsplit("-", 1)[0]
        try:
            codec = Codec.from_pretrained(name)
        except ModelError:
            raise ModelError(f"the LM was trained on codec {lm.config.codec_id}, which is not installed; "
                             "pass --model DIR") from None
    else:
        codec = Codec.from_pretrained(model)
    check_codec(lm.config, codec.model_id)
    return codec


def load_prompt(codec, path: str | os.PathLike, seconds: float, stages: int) -> Tensor:
    """The first `seconds` of an audio file (whole frames) encoded to (1, stages, P) codes."""
    from fsq_audio import audio

    x, _ = audio.load(path, sample_rate=codec.sample_rate)
    frames = int(seconds * codec.frame_rate)
    n = min(x.shape[-1], frames * codec.hop_length) // codec.hop_length * codec.hop_length
    if n == 0:
        raise FsqAudioError(f"{path}: prompt shorter than one frame")
    return codec.encode(torch.from_numpy(x[:1, :n])[None], stages=stages)


def output_paths(output: str, n: int) -> list[Path]:
    """`out.wav` for one sample, else out_0.wav, out_1.wav, ..."""
    out = Path(output)
    return [out] if n == 1 else [out.with_name(f"{out.stem}_{i}{out.suffix or '.wav'}") for i in range(n)]


def generate_audio(lm: TokenLM, codec, seconds: float, num_samples: int = 1, prompt: Tensor | None = None,
                   seed: int = 0, **sampling) -> Tensor:
    """Sample tokens and decode them: (num_samples, 1, round(seconds * sample_rate)) audio."""
    frames = math.ceil(seconds * codec.frame_rate)
    gen = torch.Generator(device=lm.bos.device).manual_seed(seed)
    codes = generate_tokens(lm, frames, num_samples, prompt, generator=gen, **sampling)
    wav = codec.decode(codes.to(codec.device))
    return wav[..., : round(seconds * codec.sample_rate)]
