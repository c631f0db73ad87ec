"""Fixtures for token tests: a tiny codec whose tokens vary with speech, and a folder of real clips."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from fsq_audio import Codec, CodecConfig, audio
from codec_fixtures import calibrate

REPO = Path(__file__).resolve().parents[2]
DEV = REPO / ".." / "shared" / "data" / "dev"
#: a few dev clips of different lengths (1.5 s to 6 s); absent ones are skipped
DEV_CLIPS = ["cmu_arctic_pyroomacoustics/cmu_arctic_us_axb_a0005.flac", "lhotse_fixtures/LJ002-0020.flac",
             "vctk_denoiser_debug/p287_001.flac", "cmu_arctic_pyroomacoustics/cmu_arctic_us_axb_a0004.flac",
             "vctk_denoiser_debug/p287_002.flac", "lhotse_fixtures/ES2011a.Headset-0-40s-46s.flac"]


@pytest.fixture(autouse=True)
def _keep_torch_threads():
    """The CLI sets torch's thread count for the process; give other tests theirs back."""
    n = torch.get_num_threads()
    yield
    torch.set_num_threads(n)


def _speech_files(fallback: Path) -> list[Path]:
    files = [DEV / c for c in DEV_CLIPS if (DEV / c).is_file()]
    return files or [fallback]


@pytest.fixture(scope="session")
def clip_dir(tmp_path_factory: pytest.TempPathFactory, speech_clip: Path) -> Path:
    """Real speech clips (dev set, else tests/data), plus a 22.05 kHz stereo file and a 50 ms file.

    File names are chosen so that the sorted order differs from the order of DEV_CLIPS.
    """
    root = tmp_path_factory.mktemp("clips")
    files = _speech_files(speech_clip)
    for i, f in enumerate(files):
        shutil.copy(f, root / f"{'zyxwvu'[i]}_{f.stem}{f.suffix}")
    x, sr = audio.load(files[0])
    stereo = np.stack([x[0], 0.5 * x[0]], axis=1)
    sf.write(root / "m_stereo_22k.wav", audio.resample(stereo.T, sr, 22050).T, 22050, subtype="FLOAT")
    sf.write(root / "n_short.wav", x[0, 4000:4800], sr, subtype="PCM_16")  # 50 ms, < 3 frames
    return root


@pytest.fixture(scope="session")
def codec_dir(tmp_path_factory: pytest.TempPathFactory, speech_clip: Path) -> Path:
    """Release dir of a tiny codec (encode window 20 frames) whose latents are scaled so that
    speech spreads over many FSQ cells (a fresh random encoder maps nearly everything to one code)."""
    with torch.random.fork_rng():
        torch.manual_seed(0)
        codec = Codec(CodecConfig.tiny()).prepare_for_inference()
    x, _ = audio.load(_speech_files(speech_clip)[0], 16000)
    wav = torch.from_numpy(x)[None]
    calibrate(codec, wav)
    directory = tmp_path_factory.mktemp("codec")
    codec.save_pretrained(str(directory))
    return directory


@pytest.fixture(scope="session")
def codec(codec_dir: Path) -> Codec:
    return Codec.from_pretrained(str(codec_dir))


@pytest.fixture(scope="session")
def other_codec_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A second tiny codec (other weights, so another model_id)."""
    directory = tmp_path_factory.mktemp("codec_other")
    with torch.random.fork_rng():
        torch.manual_seed(1)
        Codec(CodecConfig.tiny()).save_pretrained(str(directory))
    return directory
