"""Our codec as an evaluation system: a real .fsqa round trip, plus token statistics.

Each utterance goes through `fsq_audio.api.compress_file` and `decompress_file` in a scratch
folder, so the bitrate is measured from the size of the file a user would store, and the
tokens are read back from that file. `TokenStats` accumulates code counts per stage over a
data set and reports codebook utilisation and the unigram entropy (the headroom for
entropy coding).
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import numpy as np

from fsq_audio.eval.baselines import Coded, System, read_eval_audio
from fsq_audio.eval.metrics import EVAL_SR


class FsqSystem(System):
    """Our codec at a given number of residual stages.

    Args:
        codec: a loaded `fsq_audio.Codec` (inference-ready).
        stages: residual FSQ stages to keep (1..codec.num_stages).
    """

    family = "fsq"
    kind = "ours"

    def __init__(self, codec: Any, stages: int) -> None:
        super().__init__(f"s{stages}")
        self.codec = codec
        self.stages = stages

    def describe(self) -> dict:
        return {
            **super().describe(),
            "stages": self.stages,
            "nominal_kbps": self.codec.bitrate(self.stages) / 1000.0,
            "model_id": self.codec.model_id,
        }

    def code(self, src: Path, ref: np.ndarray, workdir: Path) -> Coded:
        from fsq_audio import api, bitstream

        stream, dec = workdir / "x.fsqa", workdir / "dec.wav"
        t0 = time.perf_counter()
        api.compress_file(src, stream, self.codec, stages=self.stages)
        t1 = time.perf_counter()
        api.decompress_file(stream, dec, self.codec, sample_rate=EVAL_SR)
        t2 = time.perf_counter()
        header, payload = bitstream.read(stream)
        tokens = payload if isinstance(payload, np.ndarray) else None
        return Coded(
            read_eval_audio(dec), stream.stat().st_size * 8, header.payload_bytes * 8, t1 - t0, t2 - t1,
            tokens=tokens,
        )


def parse_stages(spec: str | list[int] | None, num_stages: int) -> list[int]:
    """Stage counts from ``"1,2,4"`` / ``"all"`` / None (= all stages), checked and sorted.

    Raises:
        ConfigError: a value is not an integer within 1..num_stages.
    """
    from fsq_audio.errors import ConfigError

    if spec is None or (isinstance(spec, str) and spec.strip().lower() in ("", "all")):
        return [num_stages]
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    out = set()
    for item in items:
        try:
            n = int(str(item).strip())
        except ValueError:
            raise ConfigError(f"--stages: {item!r} is not an integer") from None
        if not 1 <= n <= num_stages:
            raise ConfigError(f"--stages: {n} is outside 1..{num_stages} (the model has {num_stages} stages)")
        out.add(n)
    return sorted(out)


class TokenStats:
    """Per-stage code counts over a data set.

    Args:
        codebook_size: codes per stage.
        frame_rate: frames per second (to turn bits/frame into kbit/s).
    """

    def __init__(self, codebook_size: int, frame_rate: float) -> None:
        self.codebook_size = codebook_size
        self.frame_rate = frame_rate
        self.counts: list[np.ndarray] = []

    def add(self, tokens: np.ndarray) -> None:
        """Count the codes of one utterance, tokens of shape (S, F)."""
        tokens = np.asarray(tokens, dtype=np.int64)
        while len(self.counts) < tokens.shape[0]:
            self.counts.append(np.zeros(self.codebook_size, dtype=np.int64))
        for s, row in enumerate(tokens):
            self.counts[s] += np.bincount(row, minlength=self.codebook_size)

    def summary(self) -> dict:
        """Utilisation (fraction of codes used) and entropy (bits) per stage, and totals."""
        util, ent = [], []
        for c in self.counts:
            total = c.sum()
            p = c[c > 0] / total if total else np.zeros(0)
            util.append(float(np.count_nonzero(c)) / self.codebook_size)
            ent.append(float(-(p * np.log2(p)).sum()) if p.size else 0.0)
        bits_per_code = max(1, int(np.ceil(np.log2(self.codebook_size))))
        frames = int(self.counts[0].sum()) if self.counts else 0
        entropy = float(sum(ent))
        return {
            "frames": frames,
            "codebook_size": self.codebook_size,
            "utilisation": util,
            "entropy_bits": ent,
            "entropy_bits_per_frame": entropy,
            "fixed_bits_per_frame": bits_per_code * len(self.counts),
            "entropy_kbps": entropy * self.frame_rate / 1000.0,
        }
