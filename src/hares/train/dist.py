"""torch.distributed helpers: DDP set-up from torchrun's environment (nanoGPT style) and a differentiable gather.

`GatherLayer` is the piece every distributed contrastive loss depends on (docs/PRETRAINING.md section 7): forward
all-gathers the tensor of every rank; backward **sums** the gradients that every rank computed for the gathered
tensor (all_reduce) and hands each rank its own slice. Returning only the local slice without the sum is the
classic bug (lightly-ai/lightly#1528, cellarium-ai/cellarium-ml PR #184).
"""

from __future__ import annotations

import inspect
import os
from dataclasses import dataclass

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def is_main() -> bool:
    return rank() == 0


class GatherLayer(torch.autograd.Function):
    """All-gather with gradients: (B, ...) on each rank -> (world * B, ...), rank-major."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = x.contiguous()
        parts = [torch.empty_like(x) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, x)
        return torch.cat(parts, dim=0)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)  # every rank's loss depends on this rank's slice
        return grad.chunk(dist.get_world_size(), dim=0)[dist.get_rank()]


class AllReduceSum(torch.autograd.Function):
    """Sum over ranks with gradients: every rank's output depends on every rank's input, so backward sums too."""

    @staticmethod
    def forward(ctx, x: torch.Tensor) -> torch.Tensor:  # noqa: D102
        x = x.contiguous().clone()
        dist.all_reduce(x, op=dist.ReduceOp.SUM)
        return x

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:  # noqa: D102
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad


def all_reduce_with_grad(x: torch.Tensor) -> torch.Tensor:
    """`AllReduceSum` when running distributed with more than one rank, else `x` itself."""
    return AllReduceSum.apply(x) if world_size() > 1 else x


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """`GatherLayer` when running distributed with more than one rank, else `x` itself."""
    return GatherLayer.apply(x) if world_size() > 1 else x


@dataclass(frozen=True)
class DistInfo:
    rank: int
    local_rank: int
    world_size: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def setup(device: str = "auto") -> DistInfo:
    """Start the process group when launched by torchrun (RANK / WORLD_SIZE / LOCAL_RANK set), else one process.

    NCCL with one GPU per process when CUDA is used, gloo on CPU. `device` is "auto", "cpu" or "cuda".
    """
    use_cuda = torch.cuda.is_available() if device == "auto" else device.startswith("cuda")
    if "RANK" not in os.environ or int(os.environ.get("WORLD_SIZE", "1")) == 1:
        dev = torch.device("cuda" if use_cuda else "cpu")
        return DistInfo(0, 0, 1, dev)
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if use_cuda:
        torch.cuda.set_device(local_rank)
        dev = torch.device("cuda", local_rank)
    else:
        dev = torch.device("cpu")
    if not is_distributed():
        dist.init_process_group(backend="nccl" if use_cuda else "gloo")
    return DistInfo(dist.get_rank(), local_rank, dist.get_world_size(), dev)


def wrap_ddp(module: torch.nn.Module, device: torch.device) -> torch.nn.Module:
    """DDP without per-forward buffer sync: BN statistics are already global (GlobalBatchNorm1d / SyncBatchNorm)
    and BYOL-A's mixup memory is deliberately per rank. Torch >= 2.14 spells it `forward_sync_buffers`."""
    from torch.nn.parallel import DistributedDataParallel as DDP

    ids = [device.index] if device.type == "cuda" else None
    # an objective whose forward may leave parameters unused (wav2vec 2.0's layer drop) says so
    unused = bool(getattr(module, "ddp_find_unused_parameters", False))
    if "forward_sync_buffers" in inspect.signature(DDP.__init__).parameters:
        return DDP(module, device_ids=ids, forward_sync_buffers=False, find_unused_parameters=unused)
    return DDP(module, device_ids=ids, broadcast_buffers=False, find_unused_parameters=unused)


def cleanup() -> None:
    if is_distributed():
        dist.destroy_process_group()


def barrier() -> None:
    if world_size() > 1:
        dist.barrier()


def all_reduce_sum(value: float, device: torch.device) -> float:
    """Sum a Python number over ranks (identity in one process)."""
    if world_size() == 1:
        return float(value)
    t = torch.tensor([float(value)], dtype=torch.float64, device=device)
    dist.all_reduce(t, op=dist.ReduceOp.SUM)
    return float(t.item())
