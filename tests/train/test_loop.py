"""The training loop: exact resumption, the loss falls on real audio, checkpoints load in `hares eval`, CLI."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from _helpers import run_killed_after
from safetensors.torch import load_file

import hares.train.loop as loop
from hares.cli import main
from hares.models import load_checkpoint, read_metadata
from hares.train.config import get_preset
from hares.train.data import DataError, open_source, write_shards

TINY = dict(model="train_test_tiny", proj_hidden=32, proj_dim=8, byol_proj_dim=8, byol_memory=16, progress=False)


@pytest.mark.parametrize(
    ("objective", "layout"), [("simclr", "folder"), ("supervised", "folder"), ("byola", "folder"), ("simclr", "shards")]
)
def test_killed_and_resumed_run_equals_uninterrupted_run(
    tmp_path: Path, tone_folder: Path, objective, layout, monkeypatch
):
    data = tone_folder
    if layout == "shards":
        data = tmp_path / "shards"
        write_shards(open_source(tone_folder), data, shard_size=4)
    common = dict(data=str(data), objective=objective, batch_size=4, steps=5, crop_seconds=0.5, **TINY)
    common.update(ckpt_every=2, log_every=1, warmup_steps=2, num_workers=0)
    straight = loop.pretrain(get_preset("debug", out=str(tmp_path / "straight"), **common))

    run_killed_after(monkeypatch, "debug", tmp_path / "resumed", 2, **common)
    assert not (tmp_path / "resumed" / "checkpoints" / "step_00000004").exists()
    resumed = loop.pretrain(get_preset("debug", out=str(tmp_path / "resumed"), resume=True, **common))

    a = load_file(str(tmp_path / "straight" / "checkpoints" / "step_00000005" / "model.safetensors"))
    b = load_file(str(tmp_path / "resumed" / "checkpoints" / "step_00000005" / "model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:  # bit-exact: weights, heads, BN statistics, BYOL-A's target network and memory
        assert torch.equal(a[k], b[k]), k
    assert torch.equal(load_file(str(straight))["net.0.weight"], load_file(str(resumed))["net.0.weight"])
    oa = load_file(str(tmp_path / "straight" / "checkpoints" / "step_00000005" / "optim.safetensors"))
    ob = load_file(str(tmp_path / "resumed" / "checkpoints" / "step_00000005" / "optim.safetensors"))
    assert all(torch.equal(oa[k], ob[k]) for k in oa)
    rows = [json.loads(ln) for ln in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(ln) for ln in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4, 5]
    assert [r["loss"] for r in rows] == [r["loss"] for r in ref]
    state = json.loads((tmp_path / "resumed" / "checkpoints" / "step_00000004" / "state.json").read_text())
    expected = (
        {"epoch": 1, "batch_in_epoch": 1, "batches_per_epoch": 3}
        if layout == "folder"
        else {"batches_per_stream": [4], "per_rank_batch": 4}
    )
    assert state["data_position"] == expected


def test_resume_refuses_a_different_config(tmp_path: Path, tone_folder: Path) -> None:
    common = dict(data=str(tone_folder), out=str(tmp_path / "r"), batch_size=4, steps=1, crop_seconds=0.5, **TINY)
    loop.pretrain(get_preset("debug", **common))
    with pytest.raises(ValueError, match="batch_size"):
        loop.pretrain(get_preset("debug", **{**common, "batch_size": 6, "steps": 2, "resume": True}))


def test_all_bad_dataset_stops_the_run_clearly(tmp_path: Path) -> None:
    for i in range(4):
        (tmp_path / "data" / f"bad{i}.wav").parent.mkdir(exist_ok=True)
        (tmp_path / "data" / f"bad{i}.wav").write_bytes(b"not audio" * (i + 1))
    cfg = get_preset("debug", data=str(tmp_path / "data"), out=str(tmp_path / "run"), batch_size=2, steps=1, **TINY)
    with pytest.warns(UserWarning), pytest.raises(DataError, match="whole dataset bad"):
        loop.pretrain(get_preset("debug", **{**cfg.to_dict(), "max_bad_in_a_row": 8}))


def test_skipped_files_are_reported(tmp_path: Path, tone_folder: Path) -> None:
    (tone_folder / "class2" / "broken.wav").write_bytes(b"RIFF junk")
    cfg = get_preset("debug", data=str(tone_folder), out=str(tmp_path / "run"), batch_size=13, steps=1, **TINY)
    with pytest.warns(UserWarning, match="skipping undecodable"):
        loop.pretrain(get_preset("debug", **{**cfg.to_dict(), "crop_seconds": 0.5}))
    row = json.loads((tmp_path / "run" / "metrics.jsonl").read_text())
    assert row["skipped_files"] == 1 and json.loads((tmp_path / "run" / "run.json").read_text())["clips"] == 13


@pytest.mark.parametrize("objective", ["simclr", "supervised"])
def test_loss_falls_on_spoken_digits(tmp_path: Path, fsdd_files: list[Path], objective: str) -> None:
    keep = lambda f: f.name.split("_")[1] in ("jackson", "theo") and int(f.stem.split("_")[2]) < 4  # noqa: E731
    files = [f for f in fsdd_files if keep(f)]  # 10 digits x 2 speakers x 4 takes
    assert len(files) == 80 and len({f.name[0] for f in files}) == 10
    rows = "".join(f"{f},{f.name.split('_')[0]}\n" for f in files)
    (tmp_path / "fsdd.csv").write_text("path,label\n" + rows)
    cfg = get_preset(
        "debug", data=str(tmp_path / "fsdd.csv"), out=str(tmp_path / "run"), objective=objective, batch_size=12,
        steps=30, crop_seconds=0.5, lr=2e-3, warmup_steps=0, log_every=1, **{**TINY, "proj_hidden": 64},
    )  # fmt: skip
    loop.pretrain(cfg)
    losses = [json.loads(ln)["loss"] for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    first, last = sum(losses[:5]) / 5, sum(losses[-5:]) / 5
    assert last < 0.85 * first, (first, last)


def test_exported_encoder_loads_in_hares_eval(tmp_path: Path, tone_folder: Path) -> None:
    cfg = get_preset("debug", data=str(tone_folder), out=str(tmp_path / "run"), batch_size=2, steps=1, crop_seconds=0.5)
    assert cfg.model == "sf_nfnet_micro"
    path = loop.pretrain(get_preset("debug", **{**cfg.to_dict(), "proj_hidden": 16, "progress": False}))
    assert path == tmp_path / "run" / "encoder.safetensors"
    meta = read_metadata(path)
    assert meta["hares_name"] == "sf_nfnet_micro" and json.loads(meta["hares_pretrain"])["step"] == 1
    net = load_checkpoint(path)
    assert not any(k.startswith(("projector", "head")) for k in net.state_dict())
    from hares.evaluate.encoders import load_encoder

    enc = load_encoder(str(path))
    emb = enc(torch.randn(2, 16000) * 0.1)
    assert emb.shape == (2, net.embed_dim) and torch.isfinite(emb).all()


def test_cli_pretrain_then_resume(tmp_path: Path, tone_folder: Path, capsys) -> None:
    args = [
        "pretrain",
        "--preset",
        "debug",
        "--data",
        str(tone_folder),
        "--out",
        str(tmp_path / "run"),
        "--no-progress",
    ]
    sets = ["--set", "model='train_test_tiny'", "--set", "proj_hidden=16", "--set", "crop_seconds=0.5"]
    assert main([*args, "--steps", "2", "--batch-size", "4", *sets]) == 0
    assert "encoder checkpoint:" in capsys.readouterr().out
    saved = json.loads((tmp_path / "run" / "config.json").read_text())
    assert saved["steps"] == 2 and saved["model"] == "train_test_tiny" and saved["preset"] == "debug"
    assert main([*args, "--steps", "3", "--batch-size", "4", "--resume", *sets]) == 0
    assert "resuming" in capsys.readouterr().out
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert sorted(p.name for p in (tmp_path / "run" / "checkpoints").iterdir()) == [
        "latest", "step_00000002", "step_00000003",
    ]  # fmt: skip
