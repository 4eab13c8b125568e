"""Two gloo processes on CPU equal one process on the combined batch (docs/PRETRAINING.md section 7)."""

from __future__ import annotations

import json
import socket
from pathlib import Path

import _ddp_worker
import pytest
import torch
import torch.multiprocessing as mp
from safetensors.torch import load_file

from hares.models import load_checkpoint
from hares.train.config import get_preset


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_process_simclr_equals_one_process_on_combined_batch(tmp_path: Path) -> None:
    mp.start_processes(
        _ddp_worker.objective_worker, args=(2, free_port(), str(tmp_path)), nprocs=2, start_method="spawn"
    )
    ranks = [load_file(str(tmp_path / f"rank{r}.safetensors")) for r in range(2)]
    objective = _ddp_worker.build_simclr()
    ref = _ddp_worker.loss_and_grads(objective, objective, _ddp_worker.global_batch())

    # DDP averages the gradients of the per-rank mean losses = the gradient of the global mean loss
    global_loss = (ranks[0]["loss"] + ranks[1]["loss"]) / 2
    assert torch.allclose(global_loss, ref["loss"], atol=1e-5), (global_loss, ref["loss"])
    assert not torch.allclose(ranks[0]["loss"], ranks[1]["loss"], atol=1e-3)  # the halves really differ
    grads = [k for k in ref if k.startswith("grad.")]
    assert any(k.startswith("grad.encoder") for k in grads) and any(k.startswith("grad.projector") for k in grads)
    for k in grads:
        for r in range(2):
            assert torch.allclose(ranks[r][k], ref[k], atol=1e-5, rtol=0), (k, r, (ranks[r][k] - ref[k]).abs().max())
    for k in (k for k in ref if k.startswith("buffer.")):  # projector BN statistics span the global batch
        assert torch.allclose(ranks[0][k], ref[k], atol=1e-5), k


@pytest.mark.slow
def test_two_process_pretrain_run_equals_one_process(tmp_path: Path, tone_folder: Path) -> None:
    """The real loop under torchrun-style env vars: same logged losses and weights as one process (mixing off).

    Everything runs in fp32 here, so agreement is to fp32 round-off (the fp64 test above pins 1e-5 exactly)."""
    common = dict(
        data=str(tone_folder), model="train_test_tiny", batch_size=8, steps=3, crop_seconds=0.5,
        proj_hidden=32, proj_dim=8, mix_max_ratio=0.0, lr=1e-3, warmup_steps=0, log_every=1, progress=False,
    )  # fmt: skip
    two = get_preset("debug", out=str(tmp_path / "two"), **common)
    mp.start_processes(
        _ddp_worker.pretrain_worker, args=(2, free_port(), two.to_dict()), nprocs=2, start_method="spawn"
    )
    one = get_preset("debug", out=str(tmp_path / "one"), **common)
    from hares.train.loop import pretrain

    pretrain(one)
    rows = {
        w: [json.loads(ln) for ln in (tmp_path / w / "metrics.jsonl").read_text().splitlines()] for w in ("one", "two")
    }
    assert [r["step"] for r in rows["two"]] == [1, 2, 3]
    for a, b in zip(rows["one"], rows["two"]):
        assert abs(a["loss"] - b["loss"]) < 1e-4, (a, b)
    run = json.loads((tmp_path / "two" / "run.json").read_text())
    assert run["world_size"] == 2 and run["per_rank_batch"] == 4  # the global batch stays the preset's 8
    # Weights are not compared: parameters whose true gradient is 0 (a bias feeding the projector's BN) receive
    # round-off gradients that Adam normalises to +-lr steps; the losses after the updates are what must agree.
    assert load_checkpoint(tmp_path / "two" / "encoder.safetensors").embed_dim == 16
