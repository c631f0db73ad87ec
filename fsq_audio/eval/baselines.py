"""Classic codecs run as real programs, for side-by-side comparison with our codec.

A baseline is named ``family:setting`` on the command line: ``identity`` (a 16-bit WAV
copy, the sanity check), ``opus:KBPS`` (opusenc/opusdec, else ffmpeg with libopus),
``codec2:MODE`` (c2enc/c2dec; 3200, 2400, 1600, 1400, 1300, 1200, 700C, 450) and ``g722``
(ffmpeg, 64 kbit/s). Every system turns a 16 kHz reference into decoded 16 kHz audio plus
the bits it stored; bitrates come from the real file sizes. Absent programs make a system
report why through :meth:`System.missing`, so the evaluation can skip it with a notice.
"""

from __future__ import annotations

import functools
import shutil
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from fsq_audio import audio
from fsq_audio.errors import ConfigError
from fsq_audio.eval.metrics import EVAL_SR

#: Codec2 modes that c2enc accepts.
CODEC2_MODES = ("3200", "2400", "1600", "1400", "1300", "1200", "700C", "450")
_CODEC2_SR = 8000


@dataclass
class Coded:
    """One utterance after a round trip through a codec.

    Attributes:
        audio: decoded signal at EVAL_SR, shape (T',) (not yet aligned).
        bits: size of the stored file in bits (container and header included).
        payload_bits: bits without the container (Ogg pages, .fsqa header), None if no container.
        encode_s: wall-clock seconds to encode, decode_s: to decode.
        tokens: codec indices of shape (S, F), only for token-based codecs.
    """

    audio: np.ndarray
    bits: int
    payload_bits: int | None
    encode_s: float
    decode_s: float
    tokens: np.ndarray | None = None
    extra: dict = field(default_factory=dict)


class System:
    """A codec under evaluation: `code()` round-trips one utterance through it."""

    family = "system"
    kind = "baseline"

    def __init__(self, setting: str = "") -> None:
        self.setting = setting

    @property
    def name(self) -> str:
        return f"{self.family}:{self.setting}" if self.setting else self.family

    def missing(self) -> str | None:
        """Why this system cannot run here (missing programs), or None if it can."""
        return None

    def describe(self) -> dict:
        """JSON-ready description for results.json."""
        return {"name": self.name, "family": self.family, "setting": self.setting, "kind": self.kind}

    def code(self, src: Path, ref: np.ndarray, workdir: Path) -> Coded:
        """Encode and decode one utterance.

        Args:
            src: the original audio file.
            ref: the reference at EVAL_SR (mono), shape (T,).
            workdir: an empty scratch folder for this call.
        """
        raise NotImplementedError


def run_program(cmd: list[str]) -> float:
    """Run `cmd`, return its wall-clock seconds; RuntimeError with its stderr if it fails."""
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, stdin=subprocess.DEVNULL, capture_output=True, check=False)
    elapsed = time.perf_counter() - t0
    if proc.returncode != 0:
        tail = proc.stderr.decode(errors="replace").strip().splitlines()[-1:] or ["no message"]
        raise RuntimeError(f"{Path(cmd[0]).name} exited with {proc.returncode}: {tail[0][:200]}")
    return elapsed


@functools.lru_cache(maxsize=1)
def ffmpeg_encoders() -> frozenset[str]:
    """Names of the encoders the installed ffmpeg offers (empty if there is no ffmpeg)."""
    exe = shutil.which("ffmpeg")
    if exe is None:
        return frozenset()
    proc = subprocess.run([exe, "-hide_banner", "-encoders"], capture_output=True, check=False)
    names = set()
    for line in proc.stdout.decode(errors="replace").splitlines():
        parts = line.split()
        if len(parts) >= 2 and len(parts[0]) == 6:
            names.add(parts[1])
    return frozenset(names)


def _ffmpeg(*args: str) -> list[str]:
    return ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *args]


def _write_wav(path: Path, x: np.ndarray, sr: int = EVAL_SR) -> None:
    audio.save(path, x[None], sr, subtype="PCM_16")


def read_eval_audio(path: Path) -> np.ndarray:
    """A decoded file as mono float32 at EVAL_SR, shape (T,)."""
    return audio.load(path, sample_rate=EVAL_SR, mono=True)[0][0]


class Identity(System):
    """A 16-bit PCM WAV copy: the upper bound every metric should reach."""

    family = "identity"

    def code(self, src: Path, ref: np.ndarray, workdir: Path) -> Coded:
        out = workdir / "identity.wav"
        t0 = time.perf_counter()
        _write_wav(out, ref)
        t1 = time.perf_counter()
        dec = read_eval_audio(out)
        t2 = time.perf_counter()
        return Coded(dec, out.stat().st_size * 8, None, t1 - t0, t2 - t1)


def ogg_payload_bytes(data: bytes, header_packets: int = 2) -> tuple[int, int]:
    """Audio payload and container overhead of an Ogg file (RFC 3533).

    Args:
        data: the whole file.
        header_packets: leading packets that hold stream metadata, not audio (Opus: OpusHead
            and OpusTags, RFC 7845); they count as overhead.

    Returns:
        (payload, overhead) in bytes: the audio packets, and the rest (page headers of 27
        bytes plus one lacing byte per segment, and the header packets); they sum to len(data).

    Raises:
        ValueError: not a well-formed Ogg stream.
    """
    pos = payload = overhead = packets = 0
    while pos < len(data):
        if data[pos : pos + 4] != b"OggS" or pos + 27 > len(data):
            raise ValueError(f"bad Ogg page at byte {pos}")
        nseg = data[pos + 26]
        lacing = data[pos + 27 : pos + 27 + nseg]
        if len(lacing) != nseg or pos + 27 + nseg + sum(lacing) > len(data):
            raise ValueError(f"truncated Ogg page at byte {pos}")
        overhead += 27 + nseg
        for seg in lacing:
            if packets < header_packets:
                overhead += seg
            else:
                payload += seg
            packets += seg < 255  # a lacing value below 255 ends a packet
        pos += 27 + nseg + sum(lacing)
    return payload, overhead


class Opus(System):
    """Opus at a target bitrate (kbit/s), tuned for speech, 20 ms frames, VBR."""

    family = "opus"

    def __init__(self, setting: str) -> None:
        try:
            kbps = float(setting.lower().rstrip("k"))
        except ValueError:
            raise ConfigError(f"opus:{setting}: bitrate must be a number of kbit/s, e.g. opus:12") from None
        if not 6 <= kbps <= 256:
            raise ConfigError(f"opus:{setting}: bitrate must be within 6..256 kbit/s")
        super().__init__(f"{kbps:g}")
        self.kbps = kbps

    def tool(self) -> str | None:
        """'opus-tools', 'ffmpeg' or None, in order of preference."""
        if shutil.which("opusenc") and shutil.which("opusdec"):
            return "opus-tools"
        if "libopus" in ffmpeg_encoders():
            return "ffmpeg"
        return None

    def missing(self) -> str | None:
        if self.tool() is None:
            return "needs opusenc and opusdec (apt-get install opus-tools) or ffmpeg with libopus"
        return None

    def describe(self) -> dict:
        return {**super().describe(), "program": self.tool()}

    def code(self, src: Path, ref: np.ndarray, workdir: Path) -> Coded:
        wav, enc, dec = workdir / "in.wav", workdir / "out.opus", workdir / "dec.wav"
        _write_wav(wav, ref)
        if self.tool() == "opus-tools":
            enc_cmd = ["opusenc", "--quiet", "--speech", "--bitrate", f"{self.kbps:g}", "--serial", "1",
                       str(wav), str(enc)]
            dec_cmd = ["opusdec", "--quiet", "--rate", str(EVAL_SR), str(enc), str(dec)]
        else:
            enc_cmd = _ffmpeg("-i", str(wav), "-c:a", "libopus", "-b:a", f"{self.kbps:g}k", "-application", "voip",
                              str(enc))
            dec_cmd = _ffmpeg("-i", str(enc), "-ar", str(EVAL_SR), "-ac", "1", "-c:a", "pcm_s16le", str(dec))
        t_enc = run_program(enc_cmd)
        t_dec = run_program(dec_cmd)
        data = enc.read_bytes()
        payload, _ = ogg_payload_bytes(data)
        return Coded(read_eval_audio(dec), len(data) * 8, payload * 8, t_enc, t_dec)


class Codec2(System):
    """Codec2 (c2enc/c2dec) on 8 kHz audio, headerless bit files."""

    family = "codec2"

    def __init__(self, setting: str) -> None:
        mode = setting.upper()
        if mode not in CODEC2_MODES:
            raise ConfigError(f"codec2:{setting}: mode must be one of {', '.join(CODEC2_MODES)}")
        super().__init__(mode)

    def missing(self) -> str | None:
        if not (shutil.which("c2enc") and shutil.which("c2dec")):
            return "needs c2enc and c2dec (apt-get install codec2)"
        return None

    def code(self, src: Path, ref: np.ndarray, workdir: Path) -> Coded:
        raw, bit, dec = workdir / "in.raw", workdir / "out.bit", workdir / "dec.raw"
        x8 = audio.resample(ref[None], EVAL_SR, _CODEC2_SR)[0]
        raw.write_bytes(np.clip(np.round(x8 * 32768.0), -32768, 32767).astype("<i2").tobytes())
        t_enc = run_program(["c2enc", self.setting, str(raw), str(bit)])
        t_dec = run_program(["c2dec", self.setting, str(bit), str(dec)])
        y8 = np.frombuffer(dec.read_bytes(), dtype="<i2").astype(np.float32) / 32768.0
        y = audio.resample(y8[None], _CODEC2_SR, EVAL_SR)[0]
        return Coded(y, bit.stat().st_size * 8, None, t_enc, t_dec)


class G722(System):
    """ITU-T G.722 at 64 kbit/s through ffmpeg (raw .g722 file, no container)."""

    family = "g722"

    def __init__(self, setting: str = "") -> None:
        if setting not in ("", "64", "64k"):
            raise ConfigError(f"g722:{setting}: only 64 kbit/s is available")
        super().__init__("")

    def missing(self) -> str | None:
        if "g722" not in ffmpeg_encoders():
            return "needs ffmpeg with the g722 encoder (apt-get install ffmpeg)"
        return None

    def code(self, src: Path, ref: np.ndarray, workdir: Path) -> Coded:
        wav, enc, dec = workdir / "in.wav", workdir / "out.g722", workdir / "dec.wav"
        _write_wav(wav, ref)
        t_enc = run_program(_ffmpeg("-i", str(wav), "-c:a", "g722", "-f", "g722", str(enc)))
        t_dec = run_program(_ffmpeg("-f", "g722", "-i", str(enc), "-c:a", "pcm_s16le", str(dec)))
        return Coded(read_eval_audio(dec), enc.stat().st_size * 8, None, t_enc, t_dec)


_FAMILIES: dict[str, type[System]] = {"identity": Identity, "opus": Opus, "codec2": Codec2, "g722": G722}


def parse_baselines(spec: str | list[str] | None) -> list[System]:
    """Systems from ``"identity,opus:6,codec2:1200"`` (or a list of such names).

    ``""``, ``"none"`` and None give no baselines. Duplicates are dropped, order is kept.

    Raises:
        ConfigError: unknown family or invalid setting.
    """
    if spec is None:
        return []
    items = spec.split(",") if isinstance(spec, str) else list(spec)
    systems: dict[str, System] = {}
    for item in (i.strip() for i in items):
        if not item or item.lower() == "none":
            continue
        family, _, setting = item.partition(":")
        cls = _FAMILIES.get(family.lower())
        if cls is None:
            raise ConfigError(f"unknown baseline {item!r}; choose from {', '.join(_FAMILIES)}")
        if cls is Identity and setting:
            raise ConfigError(f"identity takes no setting, got {item!r}")
        system = cls() if cls is Identity else cls(setting)
        systems.setdefault(system.name, system)
    return list(systems.values())
