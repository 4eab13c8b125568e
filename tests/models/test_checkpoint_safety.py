"""Checkpoint metadata is untrusted (issue 15, failures 4 and 7): validated against the network's schema, sized
on the meta device and compared with the file's shapes before anything is allocated; no path reaches a loader."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

import hares.models.checkpoint as ckpt
from hares.models import check_checkpoint, create_model, load_checkpoint, save_checkpoint
from hares.schema import OptionError


def _craft(path: Path, name: str, config, tensors: dict | None = None) -> Path:
    meta = {"hares_name": name, "hares_config": config if isinstance(config, str) else json.dumps(config)}
    save_file(tensors or {"x": torch.zeros(1)}, str(path), metadata=meta)
    return path


@pytest.fixture
def no_build(monkeypatch):
    """Fail the test if a network is built or torch.load is called (the refusal must come first)."""

    def boom(*a, **k):
        raise AssertionError("built or loaded before the metadata was refused")

    monkeypatch.setattr(ckpt, "create_model", boom)
    monkeypatch.setattr(torch, "load", boom)


def test_a_loader_path_in_the_metadata_is_refused(tmp_path: Path, no_build) -> None:
    for key in ("checkpoint_path", "pretrained", "pretrained_cfg_overlay"):
        path = _craft(tmp_path / f"{key}.safetensors", "resnet_tiny", {key: "/tmp/payload.pth"})
        with pytest.raises(OptionError, match=f"unknown key.*{key}"):
            load_checkpoint(path)


@pytest.mark.parametrize(
    ("name", "config", "expected"),
    [
        ("sf_nfnet_micro", {"slow": {"width": [16384] * 4}, "fast": {"width": [16384] * 4}}, "over the"),
        ("sf_nfnet_micro", {"slow": {"width": [64, 64, 64]}}, "slow.width: expected 4 x"),
        ("sf_nfnet_micro", {"stochdepth_rate": "0.1"}, "stochdepth_rate: expected a finite number"),
        ("sf_nfnet_micro", {"act": "os.system"}, "unknown act"),
        ("cnn14_tiny", {"widths": [8] * 10_000}, "widths: expected"),
        ("sf_resnet_tiny", {"width": 10**12}, "width: expected an integer"),
        ("no_such_network", {}, "unknown network"),
        ("cpc_bidir_tiny", {"encoder": {"channels": [8] * 100}}, "encoder.channels: expected"),
        ("wav2vec2_tiny", {"_name_or_path": "/tmp/payload"}, "unknown key"),
        ("wav2vec2_tiny", {"hidden_size": 10**9}, "hidden_size: expected an integer"),
        ("sf_nfnet_micro", "[1, 2]", "must be a JSON object"),
        ("sf_nfnet_micro", "{not json", "not JSON"),
    ],
)
def test_bad_configs_are_refused_before_anything_is_allocated(tmp_path, no_build, name, config, expected) -> None:
    path = _craft(tmp_path / "bad.safetensors", name, config)
    with pytest.raises(ValueError, match=expected) as e:
        load_checkpoint(path)
    assert str(path) in str(e.value)


def test_weights_must_match_the_declared_network_in_shape_and_be_finite(tmp_path: Path) -> None:
    net = create_model("sf_nfnet_micro")
    good = tmp_path / "good.safetensors"
    save_checkpoint(net, good)
    assert check_checkpoint(good) == "sf_nfnet_micro"
    state = {k: v.clone() for k, v in net.state_dict().items()}
    key = next(k for k, v in state.items() if v.ndim == 4)
    reshaped = dict(state, **{key: state[key].reshape(state[key].shape[0], -1, 1, 1)})
    meta = {"hares_name": "sf_nfnet_micro", "hares_config": "{}"}
    save_file(reshaped, str(tmp_path / "reshaped.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match=f"mis-shaped.*{key}"):
        load_checkpoint(tmp_path / "reshaped.safetensors")
    state[key][0, 0, 0, 0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"), metadata=meta)
    for fn in (load_checkpoint, check_checkpoint):
        with pytest.raises(ValueError, match=f"tensor '{key}' holds non-finite"):
            fn(tmp_path / "nan.safetensors")
    del state[key]
    save_file(state, str(tmp_path / "missing.safetensors"), metadata=meta)
    with pytest.raises(ValueError, match="1 missing"):
        load_checkpoint(tmp_path / "missing.safetensors")


def test_a_valid_custom_config_round_trips(tmp_path: Path) -> None:
    net = create_model("sf_nfnet_micro", slow={"depth": [1, 1, 2, 1]}, fast={"depth": [1, 1, 2, 1]}, se_ratio=0.25)
    save_checkpoint(net, tmp_path / "c.safetensors")
    back = load_checkpoint(tmp_path / "c.safetensors")
    assert back.hares_config == net.hares_config
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), back.state_dict().values()))
