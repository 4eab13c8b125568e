"""Pre-training: SimCLR, supervised, BYOL-A, bidirectional CPC and wav2vec 2.0 on any audio collection, on one CPU
or many GPUs (torchrun + DDP).

Python API: `pretrain(get_preset("demo", data="clips/", out="runs/demo"))` returns the exported encoder
checkpoint (`<out>/encoder.safetensors`, loadable with `hares.models.load_checkpoint`).
"""

from __future__ import annotations

from typing import Any

__all__ = ["PretrainConfig", "get_preset", "pretrain"]


def __getattr__(name: str) -> Any:  # torch-heavy modules load on first use, so `hares --help` stays fast
    if name == "pretrain":
        from hares.train.loop import pretrain

        return pretrain
    if name in ("PretrainConfig", "get_preset"):
        from hares.train import config

        return getattr(config, name)
    raise AttributeError(f"module 'hares.train' has no attribute {name!r}")
