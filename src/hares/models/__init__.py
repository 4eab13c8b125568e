"""Networks by name: `create_model("sf_nfnet_f0")`, `list_models("*_tiny")`.

Every network declares its input with a class attribute `input_kind`: "logmel" (the default when absent: log-mels
(B, 1, T, F)) or "waveform" (16 kHz waveforms (B, N): `cpc_bidir`, `wav2vec2_base`). It returns the pooled scene
embedding (B, embed_dim);
`forward_frames` returns frame embeddings (B, T', embed_dim) (mean over frequency of the last map).
"""

from typing import Protocol, runtime_checkable

import torch

# Family files register their builders on import (one file per family).
from hares.models import byola, cnn14, cpc, nfnet, resnet, timm_models, wav2vec2  # noqa: F401
from hares.models._registry import MODELS, check_model_config, create_model, list_models, register_model
from hares.models.checkpoint import (
    check_checkpoint,
    load_checkpoint,
    read_metadata,
    save_checkpoint,
    state_dict_hash,
)
from hares.models.haiku import load_haiku


@runtime_checkable
class Encoder(Protocol):
    """The contract every registered network meets (checked in tests, not inherited)."""

    embed_dim: int

    def __call__(self, logmel: torch.Tensor) -> torch.Tensor: ...  # (B, 1, T, F) -> (B, embed_dim)

    def forward_frames(self, logmel: torch.Tensor) -> torch.Tensor: ...  # (B, 1, T, F) -> (B, T', embed_dim)


__all__ = [
    "Encoder",
    "MODELS",
    "check_checkpoint",
    "check_model_config",
    "create_model",
    "list_models",
    "register_model",
    "load_checkpoint",
    "load_haiku",
    "read_metadata",
    "save_checkpoint",
    "state_dict_hash",
]
