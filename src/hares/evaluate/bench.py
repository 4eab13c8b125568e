"""`hares bench`: how fast an encoder embeds audio on this device, and how close that is to the hardware.

For any spec `hares eval` accepts, times `forward` (frontend + network, as `hares eval` runs them on a GPU) on
random waveforms of `--seconds` at `--batch`, after a warm-up, until `--min-time` seconds have passed, and reports:
- clips/s and the real-time factor (seconds of audio embedded per wall second);
- GFLOP per clip of the network, counted by `torch.utils.flop_counter.FlopCounterMode` on one clip (matmuls
  and convolutions, 2 FLOPs per multiply-add; the log-mel frontend, ~7 MFLOP per second of audio, is not
  counted: it is < 0.1% of a Slowfast NFNet-F0's work), and the GFLOP/s achieved;
- the share of this device's measured matmul peak (a large square matmul in the same precision, best of
  several runs) -- the number to read: how much of the hardware the encoder uses.

`measure_encoder` is also what `hares eval --plan` calibrates its time estimates with.

    hares bench --encoder random:sf_nfnet_f0 --device cpu --batch 8 --seconds 3
    hares bench --encoder logmel --encoder random:sf_nfnet_micro --json
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from typing import Any

import torch

from hares.audio import SAMPLE_RATE

PEAK_SIZES = {"cpu": 2048, "cuda": 8192}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _autocast_dtype(precision: str) -> torch.dtype | None:
    from hares.evaluate.embed import PRECISIONS, check_precision

    return PRECISIONS[check_precision(precision)]


def matmul_peak(device: str | torch.device = "cpu", precision: str = "fp32", repeats: int = 5) -> float:
    """GFLOP/s of a square matmul (2048 on CPU, 8192 on GPU) in `precision`, best of `repeats` runs."""
    device = torch.device(device)
    n = PEAK_SIZES.get(device.type, 2048)
    dtype = _autocast_dtype(precision) or torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = math.inf
    with torch.inference_mode():
        torch.mm(a, b)
        for _ in range(repeats):
            _sync(device)
            t0 = time.perf_counter()
            torch.mm(a, b)
            _sync(device)
            best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def count_flops(encoder: torch.nn.Module, seconds: float, device: torch.device, precision: str = "fp32") -> float:
    """FLOPs of embedding one clip of `seconds` (matmuls and convolutions; FlopCounterMode counts 2 per MAC)."""
    from torch.utils.flop_counter import FlopCounterMode

    wav = 0.1 * torch.randn(1, int(round(seconds * SAMPLE_RATE)), device=device)
    dtype = _autocast_dtype(precision)
    counter = FlopCounterMode(display=False)
    frontend = getattr(encoder, "frontend", None)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        x = frontend(wav) if frontend is not None else wav  # the frontend is not counted (module docstring)
        with counter:
            encoder.embed_logmel(x) if frontend is not None else encoder(x)
    return float(counter.get_total_flops())


def time_forward(
    encoder: torch.nn.Module,
    batch: int,
    seconds: float,
    device: torch.device,
    precision: str = "fp32",
    min_time: float = 2.0,
    warmup: int = 1,
) -> float:
    """Seconds per batch of `forward` on random (batch, seconds * 16000) waveforms: the mean over timed batches."""
    wav = 0.1 * torch.randn(batch, int(round(seconds * SAMPLE_RATE)), device=device)
    dtype = _autocast_dtype(precision)
    with torch.inference_mode(), torch.autocast(device.type, dtype=dtype, enabled=dtype is not None):
        for _ in range(warmup):
            encoder(wav)
        _sync(device)
        t0, n = time.perf_counter(), 0
        while True:
            encoder(wav)
            n += 1
            _sync(device)
            if time.perf_counter() - t0 >= min_time:
                return (time.perf_counter() - t0) / n


def device_name(device: torch.device) -> str:
    import os
    import platform

    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, {torch.get_num_threads()} threads"


def measure_encoder(
    encoder: Any,
    device: str | torch.device | None = None,
    batch: int = 32,
    seconds: float = 10.24,
    precision: str = "fp32",
    min_time: float = 2.0,
    peak: float | None = None,
) -> dict[str, Any]:
    """Throughput of `encoder` (an `Encoder` or a spec string) on this device; see the module docstring."""
    from hares.evaluate.encoders import load_encoder
    from hares.evaluate.run import _resolve_device

    dev = _resolve_device(device)
    if isinstance(encoder, str):
        encoder = load_encoder(encoder)
    encoder = encoder.to(dev).eval()
    per_batch = time_forward(encoder, batch, seconds, dev, precision, min_time)
    flops = count_flops(encoder, seconds, dev, precision)
    peak = matmul_peak(dev, precision) if peak is None else peak
    clips_s = batch / per_batch
    gflops = flops * clips_s / 1e9
    return {
        "encoder": encoder.info.label,
        "spec": encoder.info.spec,
        "device": str(dev),
        "device_name": device_name(dev),
        "precision": precision,
        "batch": batch,
        "seconds": seconds,
        "embed_dim": int(encoder.embed_dim),
        "clips_per_s": clips_s,
        "real_time_factor": clips_s * seconds,
        "gflop_per_clip": flops / 1e9,
        "gflop_per_s": gflops,
        "matmul_peak_gflop_per_s": peak,
        "peak_share": gflops / peak,
    }


def render_table(rows: list[dict[str, Any]]) -> str:
    head = f"{'encoder':28s} {'clips/s':>9s} {'RTF':>8s} {'GFLOP/clip':>10s} {'GFLOP/s':>9s} {'of peak':>8s}"
    lines = [head]
    for r in rows:
        lines.append(
            f"{r['encoder']:28s} {r['clips_per_s']:9.1f} {r['real_time_factor']:7.0f}x {r['gflop_per_clip']:10.2f} "
            f"{r['gflop_per_s']:9.1f} {100 * r['peak_share']:7.1f}%"
        )
    r = rows[0]
    lines.append(
        f"device {r['device']} ({r['device_name']}), {r['precision']}, batch {r['batch']} x {r['seconds']:g} s; "
        f"matmul peak {r['matmul_peak_gflop_per_s']:.1f} GFLOP/s"
    )
    return "\n".join(lines)


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "bench",
        help="clips/s, real-time factor, GFLOP/s and share of this device's matmul peak for an encoder",
        description="Times an encoder (any spec `hares eval` accepts) on random audio on this device.",
    )
    p.add_argument("--encoder", action="append", required=True, metavar="[LABEL=]SPEC", help="repeatable")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--batch", type=int, default=32, help="clips per batch (default 32)")
    p.add_argument("--seconds", type=float, default=10.24, help="clip length in seconds (default 10.24)")
    p.add_argument("--precision", choices=("fp32", "bf16", "fp16"), default="fp32", help="autocast precision")
    p.add_argument("--min-time", type=float, default=2.0, help="seconds of timed batches per encoder (default 2)")
    p.add_argument("--json", action="store_true", help="print JSON instead of a table")
    p.set_defaults(func=cmd_bench)


def cmd_bench(args: argparse.Namespace) -> int:
    from hares.evaluate.run import _resolve_device

    if args.batch < 1 or args.seconds <= 0 or args.min_time < 0:
        print("hares bench: error: --batch must be >= 1, --seconds and --min-time positive", file=sys.stderr)
        return 2
    try:
        dev = _resolve_device(args.device)
        peak = matmul_peak(dev, args.precision)
        rows = [measure_encoder(e, dev, args.batch, args.seconds, args.precision, args.min_time, peak)
                for e in args.encoder]  # fmt: skip
    except (FileNotFoundError, KeyError, ValueError, RuntimeError) as e:
        print(f"hares bench: error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(rows, indent=2) if args.json else render_table(rows))
    return 0
