"""SimCLR pre-training throughput on CPU: step time and clips/s per encoder, and 2-process (gloo) scaling.

    python benchmarks/pretrain.py                      # sf_nfnet_tiny and sf_nfnet_f0, batch 4, 3 s crops, 1 thread
    python benchmarks/pretrain.py --models sf_nfnet_micro --batch 8 --steps 3
    python benchmarks/pretrain.py --data-only          # decode + crop throughput of one data worker

One step = the full SimCLR objective (2 views, example mixing, log-mel, encoder, 3-layer projector, NT-Xent),
backward and an Adam update, on in-memory waveforms (data loading is excluded; it runs in worker processes).
Ratios are against the first model, measured in the same process. Scaling: each of 2 gloo processes (1 thread
each) runs the same per-rank batch as 1 process with 1 thread (weak scaling, global batch x2); efficiency =
(1-process step time) / (2-process step time). No GPU was lent to this task, so no GPU numbers are recorded.
"""

from __future__ import annotations

import argparse
import os
import socket
import time

import torch
import torch.multiprocessing as mp

from hares.models import create_model
from hares.train.objectives import SimCLR


def build(model: str, proj_hidden: int) -> SimCLR:
    torch.manual_seed(0)
    return SimCLR(create_model(model), proj_hidden=proj_hidden, proj_layers=3, proj_dim=128)


def time_steps(objective: torch.nn.Module, params, batch: int, seconds: float, steps: int) -> float:
    """Median seconds per training step after one warm-up step."""
    opt = torch.optim.Adam(params, lr=2e-4)
    wav = 0.1 * torch.randn(batch, 2, int(seconds * 16000))
    times = []
    for i in range(steps + 1):
        t = time.perf_counter()
        loss = objective({"wav": wav}, generator=torch.Generator().manual_seed(i))["loss"]
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if i:
            times.append(time.perf_counter() - t)
    return sorted(times)[len(times) // 2]


def _rank(rank: int, world: int, port: int, args: argparse.Namespace, out: dict) -> None:
    from hares.train import dist

    torch.set_num_threads(1)
    os.environ.update(
        {"MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(port), "RANK": str(rank), "WORLD_SIZE": str(world)}
    )
    os.environ["LOCAL_RANK"] = str(rank)
    env = dist.setup("cpu")
    objective = build(args.scaling_model, args.proj_hidden)
    model = dist.wrap_ddp(objective, env.device)
    t = time_steps(model, objective.parameters(), args.batch, args.seconds, args.steps)
    out[rank] = t
    dist.cleanup()


def scaling(args: argparse.Namespace) -> tuple[float, float]:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    objective = build(args.scaling_model, args.proj_hidden)
    one = time_steps(objective, objective.parameters(), args.batch, args.seconds, args.steps)
    torch.set_num_threads(threads)  # the reference: 1 process, 1 thread, same per-rank batch
    with mp.Manager() as manager:
        out = manager.dict()
        mp.start_processes(_rank, args=(2, port, args, out), nprocs=2, start_method="spawn")
        two = max(out.values())
    return one, two


def data_throughput(n: int = 24) -> None:
    """Clips/s of `ClipDataset` (decode + resample + 2 random 3 s crops) in one process, per storage format."""
    import tempfile
    from pathlib import Path

    import numpy as np
    import soundfile as sf

    from hares.data.manifest import Clip
    from hares.train.data import ClipDataset

    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as tmp:
        rates = {}
        for fmt, sr in [("wav", 16000), ("flac", 16000), ("flac", 48000)]:
            items = []
            for i in range(n):
                path = Path(tmp) / f"{fmt}{sr}_{i}.{fmt}"
                sf.write(str(path), (0.1 * rng.standard_normal(10 * sr)).astype(np.float32), sr)
                items.append(Clip(str(path), (), "train"))
            ds = ClipDataset(items, [], 48000, 2, seed=0)
            t = time.perf_counter()
            for i in range(n):
                ds[(i, 0)]
            rates[f"10 s {fmt} @ {sr // 1000} kHz"] = n / (time.perf_counter() - t)
    ref = next(iter(rates.values()))
    for name, r in rates.items():
        print(f"data: {name:20s} {r:7.1f} clips/s per worker ({ref / r:4.2f}x time)")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", nargs="+", default=["sf_nfnet_tiny", "sf_nfnet_f0"])
    p.add_argument("--batch", type=int, default=4, help="clips per step (x2 views)")
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--steps", type=int, default=1, help="timed steps after one warm-up step")
    p.add_argument("--proj-hidden", type=int, default=4096)
    p.add_argument("--scaling-model", default="sf_nfnet_tiny")
    p.add_argument("--no-scaling", action="store_true")
    p.add_argument("--data-only", action="store_true", help="only the data-pipeline throughput")
    p.add_argument("--threads", type=int, default=1, help="torch threads (1 is stable on a shared machine)")
    args = p.parse_args()
    torch.set_num_threads(args.threads)

    data_throughput()
    if args.data_only:
        return
    print(
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, batch {args.batch} x 2 views x {args.seconds} s"
    )
    ref = None
    for name in args.models:
        objective = build(name, args.proj_hidden)
        t = time_steps(objective, objective.parameters(), args.batch, args.seconds, args.steps)
        ref = ref or t
        n = sum(p.numel() for p in objective.encoder.parameters()) / 1e6
        print(f"{name:16s} {n:6.2f}M params  {t:7.2f} s/step  {args.batch / t:6.2f} clips/s  {t / ref:5.2f}x time")
    if not args.no_scaling:
        one, two = scaling(args)
        eff = one / two
        print(
            f"scaling ({args.scaling_model}, per-rank batch {args.batch}, 1 thread per process): 1 process "
            f"{one:.2f} s/step ({args.batch / one:.2f} clips/s); 2 processes {two:.2f} s/step "
            f"({2 * args.batch / two:.2f} clips/s); efficiency {eff:.2f}"
        )


if __name__ == "__main__":
    main()
