"""Functions run in spawned processes by the 2-process gloo tests (importable by the children)."""

from __future__ import annotations

import os
from pathlib import Path

import _helpers  # noqa: F401  (registers `train_test_tiny` in the child)
import torch
from safetensors.torch import save_file

from hares.models import create_model
from hares.train import dist
from hares.train.objectives import SimCLR


def global_batch(b: int = 6, n: int = 4000) -> dict[str, torch.Tensor]:
    """A global batch of 2 views per clip, deliberately asymmetric between the halves (cellarium-ml PR #184)."""
    g = torch.Generator().manual_seed(123)
    wav = 0.1 * torch.randn(b, 2, n, generator=g)
    wav[b // 2 :] *= 3.0
    wav[b // 2 :, :, ::7] += 0.2
    return {"wav": wav.double(), "target": torch.zeros(b, 1, dtype=torch.float64)}


def build_simclr() -> SimCLR:
    torch.manual_seed(0)
    objective = SimCLR(create_model("train_test_tiny"), proj_hidden=32, proj_layers=3, proj_dim=8, mix_max_ratio=0.0)
    return objective.double()  # fp64, so that equal means equal to far below the 1e-5 tolerance


def loss_and_grads(model: torch.nn.Module, objective: SimCLR, batch: dict) -> dict[str, torch.Tensor]:
    loss = model(batch)["loss"]
    loss.backward()
    out = {"loss": loss.detach().reshape(1)}
    out.update({f"grad.{k}": p.grad.detach().clone() for k, p in objective.named_parameters()})
    out.update({f"buffer.{k}": b.detach().clone() for k, b in objective.named_buffers() if b.is_floating_point()})
    return out


def set_env(rank: int, world: int, port: int) -> None:
    os.environ.update(
        {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(world)}
    )
    os.environ["LOCAL_RANK"] = str(rank)


def objective_worker(rank: int, world: int, port: int, out: str) -> None:
    """Each rank: DDP(SimCLR) on its half of the global batch; saves loss, (averaged) grads and BN buffers."""
    torch.set_num_threads(1)
    set_env(rank, world, port)
    env = dist.setup("cpu")
    objective = build_simclr()
    model = dist.wrap_ddp(objective, torch.device("cpu"))
    batch = global_batch()
    per = batch["wav"].shape[0] // world
    local = {k: v[rank * per : (rank + 1) * per] for k, v in batch.items()}
    save_file(loss_and_grads(model, objective, local), str(Path(out) / f"rank{env.rank}.safetensors"))
    dist.cleanup()


def pretrain_worker(rank: int, world: int, port: int, cfg_dict: dict) -> None:
    """Each rank runs the real training loop, as torchrun would start it."""
    torch.set_num_threads(1)
    set_env(rank, world, port)
    from hares.train.config import PretrainConfig
    from hares.train.loop import pretrain

    pretrain(PretrainConfig.from_dict(cfg_dict))
