"""The codec: waveform encoder -> residual FSQ -> decoder, with windowed inference.

Inference (`encode`/`decode`) runs on fixed-size windows so that tokens are reproducible:
the indices of an utterance depend only on its own samples, never on batch composition,
padding or file length (see `encode`). Training uses `forward` on whole crops.
"""

from __future__ import annotations

import contextlib
import math
from collections.abc import Iterator

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from fsq_audio.config import CodecConfig
from fsq_audio.models.decoder import build_decoder, context_frames
from fsq_audio.models.encoder import Encoder, receptive_field
from fsq_audio.nn.layers import remove_weight_norm
from fsq_audio.quantize import ResidualFSQ


@contextlib.contextmanager
def canonical_threads(device: torch.device) -> Iterator[None]:
    """Run CPU encoding on one intra-op thread (restored afterwards).

    The thread count changes the order of floating-point sums inside convolutions, which can
    flip a code that lies on a rounding boundary; one window at a time on one thread is the
    canonical computation that `encode`, `.fsqa` files and `fsq-audio tokenize` all share.
    """
    if device.type != "cpu" or torch.get_num_threads() == 1:
        yield
        return
    saved = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(saved)


class Codec(nn.Module):
    """Neural speech codec with an FSQ bottleneck.

    Args:
        config: the complete architecture (`CodecConfig`).
    """

    def __init__(self, config: CodecConfig):
        super().__init__()
        self.config = config
        self.encoder = Encoder(config)
        self.quantizer = ResidualFSQ(config.levels, config.num_stages, config.latent_dim, config.stage_dropout)
        self.decoder = build_decoder(config)
        self.name = config.name
        self._model_id: str | None = None

    # ------------------------------------------------------------------ properties
    @property
    def sample_rate(self) -> int:
        return self.config.sample_rate

    @property
    def hop_length(self) -> int:
        return self.config.hop_length

    @property
    def frame_rate(self) -> float:
        return self.config.frame_rate

    @property
    def codebook_size(self) -> int:
        return self.config.codebook_size

    @property
    def num_stages(self) -> int:
        return self.config.num_stages

    @property
    def bits_per_code(self) -> int:
        return self.config.bits_per_code

    @property
    def encoder_context(self) -> int:
        """Context frames per side of an encode window: ceil(receptive field / 2 / hop) + 1.

        A causal encoder sees its whole receptive field on the left, so it needs twice that.
        """
        side = 1 if self.config.causal else 2
        return math.ceil(receptive_field(self.config) / side / self.hop_length) + 1

    @property
    def decoder_context(self) -> int:
        return context_frames(self.config)

    def bitrate(self, stages: int | None = None) -> float:
        """Bits per second of the packed code stream (header excluded)."""
        n = self.num_stages if stages is None else stages
        return self.frame_rate * n * self.bits_per_code

    def stages_for_bitrate(self, bps: float) -> int:
        """Largest stage count whose bitrate does not exceed `bps` (at least 1)."""
        return max(1, min(self.num_stages, int(bps // (self.frame_rate * self.bits_per_code))))

    @property
    def model_id(self) -> str:
        """Identity of config + weights: '<name>-<sha256 prefix>' (cached for loaded models)."""
        if self._model_id is not None:
            return self._model_id
        from fsq_audio.checkpoint import compute_model_id

        return compute_model_id(self)

    # ------------------------------------------------------------------ training
    def forward(self, wav: Tensor, n_stages: int | None = None,
                return_aux: bool = False) -> tuple[Tensor, Tensor] | tuple[Tensor, Tensor, dict[str, Tensor]]:
        """Reconstruct (B, 1, T) audio (training path, no windowing).

        Returns:
            (wav_hat (B, 1, T), indices (B, S, ceil(T / hop))), plus the quantizer's
            regularisers (see `ResidualFSQ.forward`) when `return_aux` is set.
        """
        length = wav.shape[-1]
        wav = F.pad(wav, (0, (-length) % self.hop_length))
        z_q, indices, *aux = self.quantizer(self.encoder(wav), n_stages, return_aux=return_aux)
        return (self.decoder(z_q)[..., :length], indices, *aux)

    # ------------------------------------------------------------------ inference
    def prepare_for_inference(self) -> "Codec":
        """Eval mode and weight norm folded into plain weights (outputs unchanged)."""
        self.eval()
        remove_weight_norm(self)
        return self

    @torch.inference_mode()
    def encode(self, wav: Tensor, stages: int | None = None, max_windows: int = 1) -> Tensor:
        """Encode (B, 1, T) audio at `sample_rate` to indices (B, S, ceil(T / hop)).

        Canonical windowing: frames are computed in windows of `encode_window_frames`, each
        from a fixed-length input slice with `encoder_context` frames of context on both
        sides (zeros outside the signal). Every window has the same length, so a window's
        result never depends on the rest of the batch; a padded batch gives each utterance
        the tokens it gets alone (drop frames past ceil(length / hop)). On CPU, windows are
        computed one at a time on one thread (`canonical_threads`), so tokens do not depend on
        the thread count either; `max_windows` > 1 batches windows (faster on GPU).
        """
        n = self.quantizer._check_stages(stages)
        windows, n_frames, n_win = self._encode_windows(wav)
        with canonical_threads(self.device):
            idx = torch.cat([self.encode_windows(chunk, n) for chunk in windows.split(max_windows)])  # (B*n_win, S, N)
        idx = idx.view(wav.shape[0], n_win, n, -1).permute(0, 2, 1, 3).reshape(wav.shape[0], n, -1)
        return idx[..., :n_frames]

    @torch.inference_mode()
    def encode_windows(self, windows: Tensor, stages: int | None = None) -> Tensor:
        """Indices of the centre frames of encode windows.

        Args:
            windows: (N, 1, (encode_window_frames + 2 * encoder_context) * hop) audio slices.

        Returns:
            (N, S, encode_window_frames) indices.
        """
        ctx, win = self.encoder_context, self.config.encode_window_frames
        z = self.encoder(windows.to(self.device, next(self.parameters()).dtype))[..., ctx: ctx + win]
        return self.quantizer(z, stages)[1]

    @property
    def encode_window_samples(self) -> int:
        """Input samples of one encode window (centre plus context on both sides)."""
        return (self.config.encode_window_frames + 2 * self.encoder_context) * self.hop_length

    def _encode_windows(self, wav: Tensor) -> tuple[Tensor, int, int]:
        if wav.dim() != 3 or wav.shape[1] != 1:
            raise ValueError(f"expected audio of shape (B, 1, T), got {tuple(wav.shape)}")
        hop, win, ctx = self.hop_length, self.config.encode_window_frames, self.encoder_context
        n_frames = max(1, math.ceil(wav.shape[-1] / hop))
        n_win = math.ceil(n_frames / win)
        total = (n_win * win + 2 * ctx) * hop
        padded = F.pad(wav.float(), (ctx * hop, total - ctx * hop - wav.shape[-1]))
        windows = padded.unfold(-1, self.encode_window_samples, win * hop)  # (B, 1, n_win, L)
        return windows.reshape(-1, 1, windows.shape[-1]), n_frames, n_win

    def decode(self, indices: Tensor, window_frames: int | None = None) -> Tensor:
        """Decode (B, S', F) indices (any stage prefix) to (B, 1, F * hop) audio.

        Decodes windows of `decode_window_frames` frames with `decoder_context` frames of
        context on each side, so memory is bounded and no seams appear at window edges.
        """
        return torch.cat(list(self.iter_decode(indices, window_frames)), dim=-1)

    @torch.inference_mode()
    def iter_decode(self, indices: Tensor, window_frames: int | None = None) -> Iterator[Tensor]:
        """Yield consecutive (B, 1, n) pieces of `decode(indices)` (streaming decode)."""
        if indices.dim() != 3:
            raise ValueError(f"expected indices of shape (B, S, F), got {tuple(indices.shape)}")
        if indices.numel() and (indices.min() < 0 or indices.max() >= self.codebook_size):
            raise ValueError(f"indices out of range 0..{self.codebook_size - 1}")
        win = window_frames or self.config.decode_window_frames
        ctx, hop, frames = self.decoder_context, self.hop_length, indices.shape[-1]
        dtype = next(self.parameters()).dtype
        for start in range(0, frames, win):
            lo, hi = max(0, start - ctx), min(frames, start + win + ctx)
            z = self.quantizer.decode_indices(indices[..., lo:hi].to(self.device)).to(dtype)
            y = self.decoder(z)
            yield y[..., (start - lo) * hop: (min(frames, start + win) - lo) * hop].float()

    @property
    def device(self) -> torch.device:
        return next(self.parameters()).device

    # ------------------------------------------------------------------ persistence
    def save_pretrained(self, directory: str) -> None:
        """Write `model.safetensors` + `config.json` (see fsq_audio.checkpoint)."""
        from fsq_audio.checkpoint import save_pretrained

        save_pretrained(self, directory)

    @classmethod
    def from_pretrained(cls, name_or_dir: str | None, device: str | torch.device = "cpu") -> "Codec":
        """Load a release directory or a model name (None: the default shipped model), strictly."""
        from fsq_audio.checkpoint import load_pretrained

        return load_pretrained(name_or_dir, device=device)
