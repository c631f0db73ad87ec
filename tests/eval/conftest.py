"""Fixtures for the evaluation tests: short real speech clips from the shared dev set.

The dev set lives beside the repository (../shared/data/dev, as in CI); tests that need it
skip when it is absent. Nothing from it is copied into the repository.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fsq_audio import audio

DEV_DIR = (Path(__file__).resolve().parents[2] / ".." / "shared" / "data" / "dev").resolve()
#: The three shortest dev clips (about 1.6 s each).
SHORT_CLIPS = (
    "lhotse_fixtures/LJ002-0020.flac",
    "cmu_arctic_pyroomacoustics/cmu_arctic_us_axb_a0005.flac",
    "lhotse_fixtures/LJ002-0035.flac",
)


@pytest.fixture(scope="session")
def dev_clips() -> list[Path]:
    """Paths of three short real speech clips (skips the test if the dev set is absent)."""
    paths = [DEV_DIR / c for c in SHORT_CLIPS]
    if not all(p.is_file() for p in paths):
        pytest.skip(f"dev clips not found under {DEV_DIR}")
    return paths


@pytest.fixture(scope="session")
def dev_rows(dev_clips: list[Path]) -> list[dict]:
    """Manifest rows of the three short clips."""
    from fsq_audio.data.manifest import row_for_file

    return [row_for_file(p, DEV_DIR) for p in dev_clips]


@pytest.fixture(scope="session")
def speech(dev_clips: list[Path]) -> np.ndarray:
    """The first short clip at 16 kHz mono, shape (T,)."""
    return audio.load(dev_clips[0], sample_rate=16000)[0][0]
