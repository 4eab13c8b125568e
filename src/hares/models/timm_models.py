"""Image-network baselines of the paper's Table 2, built through timm with one input channel and no head.

Paper: Wang et al., ICASSP 2022 (arXiv:2111.12124), Table 2: NFNet-F0, ResNet50, EfficientNet-B0, ViT-Base.
Code: timm (github.com/huggingface/pytorch-image-models, Apache-2.0): `dm_nfnet_f0`, `resnet50`,
`efficientnet_b0`, `vit_base_patch16_224`, created with `in_chans=1, num_classes=0`, randomly initialised.

The log-mel (B, 1, T, F) is the image: height = time, width = frequency. The pooled embedding is timm's
(global average for the CNNs, the class token for ViT); frames are the last feature map averaged over frequency.

ViT and variable lengths: `vit_base` is ViT-B/16 with a positional-embedding grid for a 3 s clip
(304 x 80 -> 19 x 5 patches). Other lengths and mel counts are padded up to a multiple of 16
(`dynamic_img_pad`) and the positional embedding is bicubically interpolated to the actual patch grid on
every call (`dynamic_img_size`), so any T and F work without fixed windows.

Differences from reference: parameter counts differ from timm's ImageNet models only by the 1-channel first
layer and the missing classifier (dm_nfnet_f0 68,415,996; resnet50 23,501,760; efficientnet_b0 4,006,972);
ViT-B's positional embedding has 96 positions instead of 197 (85,327,872 parameters).
"""

from __future__ import annotations

import math
from typing import Any

import timm
import torch
from torch import nn

from hares.models._registry import register_model
from hares.schema import Float, Int, Seq

VIT_GRID_INPUT = (304, 80)  # (T, F) the positional embedding is made for: 3 s at a 10 ms hop, 80 mel bins

# The only timm options a config (a checkpoint's, or `create_model`'s) may set. Loader options such as
# `pretrained`, `checkpoint_path` or `pretrained_cfg` are never accepted: timm would read (and unpickle) files.
SCHEMA = {"drop_rate": Float(ge=0, lt=1), "drop_path_rate": Float(ge=0, lt=1)}
VIT_SCHEMA = {**SCHEMA, "img_size": Seq(Int(ge=16, le=8192), length=2, as_list=True)}


class TimmEncoder(nn.Module):
    """A headless, one-channel timm network under the encoder contract."""

    def __init__(self, timm_name: str, **kwargs: Any) -> None:
        super().__init__()
        self.timm_name = timm_name
        self.net = timm.create_model(timm_name, pretrained=False, in_chans=1, num_classes=0, **kwargs)
        self.embed_dim = int(self.net.num_features)
        self.is_vit = hasattr(self.net, "patch_embed") and hasattr(self.net, "pos_embed")

    def _check(self, x: torch.Tensor) -> None:
        if x.ndim != 4 or x.shape[1] != 1:
            raise ValueError(f"expected log-mels of shape (B, 1, T, F), got {tuple(x.shape)}")

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self._check(x)
        return self.net(x)  # (B, D)

    def forward_frames(self, x: torch.Tensor) -> torch.Tensor:
        """(B, 1, T, F) -> (B, T', D): the last feature map (or patch tokens) averaged over frequency."""
        self._check(x)
        h = self.net.forward_features(x)
        if self.is_vit:
            ph, pw = self.net.patch_embed.patch_size
            grid = (math.ceil(x.shape[2] / ph), math.ceil(x.shape[3] / pw))
            tokens = h[:, self.net.num_prefix_tokens :]  # (B, T'*F', D)
            return tokens.reshape(x.shape[0], grid[0], grid[1], -1).mean(dim=2)  # (B, T', D)
        return h.mean(dim=3).transpose(1, 2)  # (B, C, T', F') -> (B, T', C)


def _vit(timm_name: str, **kwargs: Any) -> TimmEncoder:
    kwargs.setdefault("img_size", list(VIT_GRID_INPUT))
    return TimmEncoder(timm_name, dynamic_img_size=True, dynamic_img_pad=True, **kwargs)


@register_model(schema=SCHEMA)
def nfnet_f0(**kwargs: Any) -> TimmEncoder:
    """NFNet-F0 (timm `dm_nfnet_f0`), 68,415,996 parameters, 3072-d."""
    return TimmEncoder("dm_nfnet_f0", **kwargs)


@register_model(schema=SCHEMA)
def resnet50(**kwargs: Any) -> TimmEncoder:
    """ResNet50 (timm `resnet50`), 23,501,760 parameters, 2048-d."""
    return TimmEncoder("resnet50", **kwargs)


@register_model(schema=SCHEMA)
def efficientnet_b0(**kwargs: Any) -> TimmEncoder:
    """EfficientNet-B0 (timm `efficientnet_b0`), 4,006,972 parameters, 1280-d."""
    return TimmEncoder("efficientnet_b0", **kwargs)


@register_model(schema=VIT_SCHEMA)
def vit_base(**kwargs: Any) -> TimmEncoder:
    """ViT-B/16 on the spectrogram (timm `vit_base_patch16_224`), 85,327,872 parameters, 768-d (class token)."""
    return _vit("vit_base_patch16_224", **kwargs)


@register_model(schema=SCHEMA)
def nfnet_tiny(**kwargs: Any) -> TimmEncoder:
    """timm's `test_nfnet`: a tiny NFNet for tests."""
    return TimmEncoder("test_nfnet", **kwargs)


@register_model(schema=SCHEMA)
def resnet_tiny(**kwargs: Any) -> TimmEncoder:
    """timm's `test_resnet`: a tiny ResNet for tests."""
    return TimmEncoder("test_resnet", **kwargs)


@register_model(schema=SCHEMA)
def efficientnet_tiny(**kwargs: Any) -> TimmEncoder:
    """timm's `test_efficientnet`: a tiny EfficientNet for tests."""
    return TimmEncoder("test_efficientnet", **kwargs)


@register_model(schema=VIT_SCHEMA)
def vit_tiny(**kwargs: Any) -> TimmEncoder:
    """timm's `test_vit` (not ViT-Ti) with the same variable-length handling as `vit_base`."""
    return _vit("test_vit", **kwargs)
