"""Every preset validates and names registered models; overrides are type-checked."""

from __future__ import annotations

import pytest

from hares.models import list_models
from hares.train.config import PRESETS, PretrainConfig, apply_overrides, get_preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_presets_validate_and_round_trip(name: str) -> None:
    cfg = get_preset(name)
    assert cfg.preset == name and cfg.model in list_models()
    assert PretrainConfig.from_dict(cfg.to_dict()) == cfg


def test_paper_presets_pin_the_paper_numbers() -> None:
    simclr, sup = get_preset("paper-simclr"), get_preset("paper-supervised")
    assert (simclr.batch_size, simclr.steps, simclr.lr, simclr.temperature) == (4096, 200_000, 2e-4, 0.1)
    assert (simclr.proj_layers, simclr.proj_hidden, simclr.proj_dim, simclr.crop_seconds) == (3, 4096, 128, 3.0)
    assert (sup.batch_size, sup.steps, sup.num_classes, sup.objective) == (1024, 100_000, 527, "supervised")
    assert simclr.model == sup.model == "sf_nfnet_f0"


def test_overrides_are_checked() -> None:
    cfg = apply_overrides(get_preset("debug"), ["lr=3e-4", "steps=7", "betas=(0.9, 0.99)", "model=sf_nfnet_tiny"])
    assert (cfg.lr, cfg.steps, cfg.betas, cfg.model) == (3e-4, 7, (0.9, 0.99), "sf_nfnet_tiny")
    assert get_preset("debug", lr=1).lr == 1.0
    with pytest.raises(KeyError, match="unknown config key"):
        get_preset("debug", learning_rate=1e-3)
    with pytest.raises(TypeError, match="steps: expected an integer"):
        apply_overrides(get_preset("debug"), ["steps=1.5"])
    with pytest.raises(ValueError, match="mix_max_ratio"):
        get_preset("debug", mix_max_ratio=0.8)
    with pytest.raises(KeyError, match="unknown preset"):
        get_preset("nope")
