"""Shared test fixtures: where shared/ lies (beside the repo, as in CI) and small audio writers."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared"


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"{SHARED} not found (shared/ lies beside the repository)")
    return SHARED


@pytest.fixture(scope="session")
def fsdd_files(shared_dir: Path) -> list[Path]:
    files = sorted((shared_dir / "data" / "fsdd" / "recordings").glob("*.wav"))
    if not files:
        pytest.skip("no FSDD recordings in shared/data/fsdd")
    return files


def write_noise(path: Path, seconds: float = 0.5, sr: int = 16000, channels: int = 1, seed: int = 0) -> Path:
    """White-noise fixture in any soundfile format (from the extension)."""
    rng = np.random.default_rng(seed)
    data = (0.1 * rng.standard_normal((int(seconds * sr), channels))).astype(np.float32)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), data if channels > 1 else data[:, 0], sr)
    return path
