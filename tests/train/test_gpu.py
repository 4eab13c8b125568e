"""The CUDA path (NCCL-free single GPU, bf16 autocast): runs only where a GPU is present (`-m gpu`)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from hares.train.config import get_preset
from hares.train.loop import pretrain

pytestmark = pytest.mark.gpu


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("objective", ["simclr", "supervised", "byola"])
def test_bf16_training_on_gpu(tmp_path: Path, tone_folder: Path, objective: str) -> None:
    cfg = get_preset(
        "debug", data=str(tone_folder), out=str(tmp_path / "run"), objective=objective, model="sf_nfnet_micro",
        batch_size=8, steps=3, crop_seconds=1.0, proj_hidden=64, log_every=1, progress=False,
    )  # fmt: skip
    path = pretrain(cfg)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["bf16"] is True
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert len(rows) == 3 and all(torch.isfinite(torch.tensor(r["loss"])) for r in rows)
    assert path.is_file()
