"""Encoder speed on CPU: inference clips/s (batch 32, 3 s clips), training step time (batch 8), and the
achieved GFLOP/s of Slowfast NFNet-F0 next to a large fp32 matmul and timm's dm_nfnet_f0, all in one run.

    .venv/bin/python benchmarks/encoders.py                     # every full-size encoder
    .venv/bin/python benchmarks/encoders.py --models sf_nfnet_f0,nfnet_f0 --repeats 3

On a shared machine the load of other processes changes from second to second, so every number is the best
of `--repeats` timed runs (after one warm-up), and the matmul reference is re-measured between model runs.
"""

from __future__ import annotations

import argparse
import platform
import time
from collections.abc import Callable

import torch
from torch.utils.flop_counter import FlopCounterMode

from hares.audio import SAMPLE_RATE, num_frames
from hares.models import create_model, list_models

MM_N = 2048


def best_time(fn: Callable[[], object], repeats: int) -> float:
    fn()  # warm-up: oneDNN primitives, allocator
    times = []
    for _ in range(repeats):
        t = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t)
    return min(times)


def matmul_gflops(repeats: int = 3) -> float:
    a, b = torch.randn(MM_N, MM_N), torch.randn(MM_N, MM_N)
    return 2 * MM_N**3 / best_time(lambda: a @ b, repeats) / 1e9


def flops_per_clip(model: torch.nn.Module, frames: int) -> float:
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(torch.randn(1, 1, frames, 80))
    return float(counter.get_total_flops())


def inference_seconds(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    model.eval()
    with torch.inference_mode():
        return best_time(lambda: model(x), repeats)


def train_step_seconds(model: torch.nn.Module, x: torch.Tensor, repeats: int) -> float:
    model.train()
    opt = torch.optim.SGD(model.parameters(), lr=1e-4, momentum=0.9)

    def step() -> None:
        opt.zero_grad(set_to_none=True)
        model(x).square().mean().backward()
        opt.step()

    return best_time(step, repeats)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--models", default=None, help="comma-separated names (default: every full-size encoder)")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--train-batch", type=int, default=8)
    p.add_argument("--seconds", type=float, default=3.0)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--skip-train", action="store_true")
    p.add_argument(
        "--threads",
        type=int,
        default=None,
        help="torch threads (default: torch's). On a loaded machine 1 thread avoids OpenMP barrier stalls "
        "that otherwise dominate small ops",
    )
    args = p.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)

    names = args.models.split(",") if args.models else [n for n in list_models() if not n.endswith(("_tiny", "_micro"))]
    frames = num_frames(int(args.seconds * SAMPLE_RATE))
    threads = torch.get_num_threads()
    print(f"# {platform.processor() or platform.machine()}, torch {torch.__version__}, {threads} threads")
    print(f"# input (B, 1, {frames}, 80) = {args.seconds:g} s clips; best of {args.repeats} after a warm-up")
    x = torch.randn(args.batch, 1, frames, 80)
    xt = torch.randn(args.train_batch, 1, frames, 80)

    rows = {}
    print(f"{'model':20s} {'params':>11s} {'clips/s':>8s} {'train step s':>12s}")
    for name in names:
        torch.manual_seed(0)
        model = create_model(name)
        n = sum(q.numel() for q in model.parameters())
        inf = inference_seconds(model, x, args.repeats)
        tr = float("nan") if args.skip_train else train_step_seconds(model, xt, args.repeats)
        rows[name] = inf
        print(f"{name:20s} {n:11,d} {args.batch / inf:8.1f} {tr:12.2f}", flush=True)

    # Achieved GFLOP/s of Slowfast NFNet-F0 (channels-last inside) vs a large matmul and vs timm's dm_nfnet_f0.
    torch.manual_seed(0)
    sf = create_model("sf_nfnet_f0").eval()
    dm = create_model("nfnet_f0").eval()
    f_sf, f_dm = flops_per_clip(sf, frames), flops_per_clip(dm, frames)
    mm = [matmul_gflops()]
    t_sf = inference_seconds(sf, x, args.repeats)
    mm.append(matmul_gflops())
    t_dm = inference_seconds(dm, x, args.repeats)
    mm.append(matmul_gflops())
    mm_best = max(mm)
    g_sf, g_dm = f_sf * args.batch / t_sf / 1e9, f_dm * args.batch / t_dm / 1e9
    print(f"# fp32 matmul {MM_N}^3: {mm_best:.1f} GFLOP/s (best; runs: {', '.join(f'{m:.0f}' for m in mm)})")
    print(f"# GFLOPs per clip: sf_nfnet_f0 {f_sf / 1e9:.2f}, dm_nfnet_f0 {f_dm / 1e9:.2f}")
    for label, g, t in (("sf_nfnet_f0", g_sf, t_sf), ("timm dm_nfnet_f0", g_dm, t_dm)):
        print(f"{label:18s} {g:6.1f} GFLOP/s = {g / mm_best:5.1%} of matmul, {args.batch / t:.1f} clips/s")
    print(f"sf_nfnet_f0 / dm_nfnet_f0: time per batch x{t_sf / t_dm:.2f}, GFLOP/s x{g_sf / g_dm:.2f}")


if __name__ == "__main__":
    main()
