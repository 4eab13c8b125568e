"""`hares eval --plan`: what a run will cost on this device, before anything runs (nothing is extracted).

Per encoder and task: clips, audio hours (file headers), evaluation windows (docs/PROTOCOL.md section 2), whether the
embeddings are already cached, and estimated extraction and probe times:
- extraction: the encoder is timed on random audio on this device (`hares.evaluate.bench.time_forward`) for
  windows of 1 s and of the clip window (10.24 s); a window of s seconds is then estimated to cost
  a + b * s (the line through the two points), summed over the task's windows. Decoding (and, on CPU, the
  log-mel in the workers) is timed on up to `DECODE_SAMPLE` of the task's own files in this process and divided
  among the `num_workers` workers; on a GPU, or a CPU with a core for every worker and torch thread, it overlaps
  the network (the larger of the two counts), else the two add up. For a large network decoding hides behind
  it; for a small network on short 8 kHz clips it dominates (BENCHMARKS.md compares plan and run);
- probe: FLOPs of one pass (forward + weight gradients on train, forward on valid) times the passes the
  protocol-v2 probe makes (`ProbeConfig.plan_passes`: the linear L-BFGS path ~25 loss evaluations per L2 point,
  once; the MLP's Adam grid, every head at once, for its epoch budget per seed), summed over folds, at
  `PROBE_EFFICIENCY` of this device's measured matmul peak. Early stopping usually ends sooner: an upper estimate.
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np
import torch

DECODE_SAMPLE = 48  # files timed per task for the decoding estimate
PROBE_EFFICIENCY = 0.4  # share of the matmul peak the grid probe reaches (BENCHMARKS.md: ~280 GFLOP/epoch in ~7 s)
CALIBRATION_SECONDS = 1.0


def window_lengths(duration: float, window_s: float, min_last_s: float) -> list[float]:
    """Seconds of each evaluation window of a clip (docs/PROTOCOL.md section 2; `hares.audio.eval_windows`)."""
    if duration <= window_s:
        return [max(duration, 0.025)]
    full, rest = int(duration // window_s), duration - window_s * int(duration // window_s)
    return [window_s] * full + ([max(rest, min_last_s)] if rest > 1e-9 else [])


def probe_flops(kind: str, n_train: int, n_valid: int, dim: int, classes: int, hidden: int, heads: int) -> float:
    """FLOPs of one epoch of the probe grid: forward + weight gradients on train, forward on valid."""
    if kind == "mlp":
        first, second = dim * hidden, hidden * classes
        train = 4 * n_train * first + 6 * n_train * second  # the second layer also passes gradients back
        return heads * (train + 2 * n_valid * (first + second))
    return heads * (4 * n_train * dim * classes + 2 * n_valid * dim * classes)


def calibrate(
    encoder: Any, device: torch.device, batch: int, window_s: float, precision: str, min_time: float = 1.0
) -> dict[str, float]:
    """Seconds per window as a + b * seconds, from timing `batch` windows of 1 s and of `window_s`."""
    from hares.evaluate.bench import time_forward

    encoder = encoder.to(device).eval()
    lengths = (CALIBRATION_SECONDS, window_s)
    per_window = [time_forward(encoder, batch, s, device, precision, min_time) / batch for s in lengths]
    slope = max(0.0, (per_window[1] - per_window[0]) / (lengths[1] - lengths[0]))
    return {"a": max(0.0, per_window[0] - slope * lengths[0]), "b": slope, "batch": batch,
            "per_window_s": dict(zip(map(str, lengths), per_window))}  # fmt: skip


def decode_seconds(clips: Sequence[Any], policy: Any, frontend: Any, sample: int = DECODE_SAMPLE) -> float:
    """Seconds per clip to decode (and window, and log-mel with `frontend`) a seeded sample of `clips`."""
    import time

    from hares.evaluate.embed import _DecodeDataset

    picks = np.random.default_rng(0).permutation(len(clips))[:sample]
    data = _DecodeDataset(clips, range(len(picks)), picks, policy, frontend)
    with torch.inference_mode():
        data[0]  # warm-up (imports, the frontend's first call)
        t0 = time.perf_counter()
        for i in range(len(picks)):
            data[i]
    return (time.perf_counter() - t0) / max(1, len(picks))


def plan_eval(
    encoders: Sequence[str],
    tasks: str | Sequence[Any],
    data_root: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    batch_size: int = 32,
    num_workers: int = 2,
    precision: str = "fp32",
    progress: bool = True,
    calibration_time: float = 1.0,
    protocol: Any = None,
    **overrides: Any,
) -> dict[str, Any]:
    """Estimate a `run_eval` with the same arguments; see the module docstring. Reads file headers only.

    `calibration_time`: seconds of timed batches per window length when timing each encoder."""
    from tqdm.auto import tqdm

    from hares.evaluate.bench import matmul_peak
    from hares.evaluate.embed import _duration, cache_entry, check_precision
    from hares.evaluate.encoders import load_encoder
    from hares.evaluate.run import Protocol, _resolve_device, _task_list
    from hares.tasks import get_task

    protocol = protocol or Protocol.with_overrides(**overrides)
    check_precision(precision)
    dev = _resolve_device(device)
    cache = Path(cache_dir or os.environ.get("HARES_CACHE") or Path.home() / ".cache" / "hares" / "embeddings")
    policy, cfg = protocol.policy, protocol.probe
    specs = [t if not isinstance(t, str) else get_task(t) for t in _task_list(tasks)]
    task_rows: list[dict[str, Any]] = []
    for spec in specs:
        try:
            clips = spec.build_manifest(data_root)
        except FileNotFoundError as e:
            task_rows.append({"task": spec.name, "missing": str(e)})
            continue
        with ThreadPoolExecutor(8) as pool:
            durations = list(tqdm(pool.map(_duration, clips), total=len(clips), desc=f"headers {spec.name}",
                                  unit="clip", disable=not progress))  # fmt: skip
        windows = [w for d in durations for w in window_lengths(d, policy.window_s, policy.min_last_s)]
        folds = spec.splits(list(clips))
        task_rows.append(
            {
                "task": spec.name,
                "spec": spec,
                "clips_list": clips,
                "clips": len(clips),
                "audio_hours": float(np.sum(durations)) / 3600,
                "windows": len(windows),
                "window_seconds": float(np.sum(windows)),
                "classes": len(spec.classes(list(clips))),
                "probe": spec.probe,
                "folds": [(len(sets["train"]), len(sets["valid"])) for _, sets in folds],
            }
        )
    peak = matmul_peak(dev)
    calib_batch = batch_size if dev.type == "cuda" else min(batch_size, 4)
    plan: dict[str, Any] = {"device": str(dev), "precision": precision, "batch_size": batch_size,
                            "matmul_peak_gflop_per_s": peak, "probe_efficiency": PROBE_EFFICIENCY,
                            "encoders": {}, "rows": []}  # fmt: skip
    for arg in encoders:
        encoder = load_encoder(arg)
        label = encoder.info.label
        calib = None
        for t in task_rows:
            if "missing" in t:
                plan["rows"].append({"encoder": label, "task": t["task"], "missing": t["missing"]})
                continue
            entry = cache_entry(encoder, t["clips_list"], cache, policy, batch_size, dev, precision)
            cached = (entry / ".done").exists()
            extraction = network = decoding = 0.0
            if not cached:
                if calib is None:
                    calib = calibrate(encoder, dev, calib_batch, policy.window_s, precision, calibration_time)
                    plan["encoders"][label] = calib
                network = t["windows"] * calib["a"] + t["window_seconds"] * calib["b"]
                frontend = getattr(encoder, "frontend", None) if dev.type == "cpu" else None  # as extract does
                decoding = t["clips"] * decode_seconds(t["clips_list"], policy, frontend) / max(1, num_workers)
                cores_free = dev.type == "cuda" or (os.cpu_count() or 1) >= torch.get_num_threads() + num_workers
                extraction = max(network, decoding) if cores_free and num_workers else network + decoding
            flops = 0.0
            for n, v in t["folds"]:  # ProbeConfig.plan_passes: L-BFGS path or Adam grid (protocol v2)
                heads, passes, seeds = cfg.plan_passes(t["probe"], n)
                dim = int(encoder.embed_dim)
                flops += probe_flops(t["probe"], n, v, dim, t["classes"], cfg.mlp_hidden, heads) * passes * seeds
            plan["rows"].append(
                {
                    "encoder": label,
                    "task": t["task"],
                    "clips": t["clips"],
                    "audio_hours": t["audio_hours"],
                    "windows": t["windows"],
                    "cached": cached,
                    "extraction_s": extraction,
                    "network_s": network,
                    "decoding_s": decoding,
                    "probe_s": flops / (peak * 1e9 * PROBE_EFFICIENCY),
                    "probe_gflop": flops / 1e9,
                }
            )
        del encoder
    done = [r for r in plan["rows"] if "missing" not in r]
    plan["total_s"] = sum(r["extraction_s"] + r["probe_s"] for r in done)
    return plan


def _hms(seconds: float) -> str:
    seconds = int(math.ceil(seconds))
    h, rest = divmod(seconds, 3600)
    return f"{h}h{rest // 60:02d}m" if h else f"{rest // 60}m{rest % 60:02d}s"


def render_plan(plan: dict[str, Any]) -> str:
    lines = [f"{'encoder':20s} {'task':24s} {'clips':>9s} {'hours':>8s} {'extract':>9s} {'probe <=':>9s}"]
    for r in plan["rows"]:
        if "missing" in r:
            lines.append(f"{r['encoder']:20s} {r['task']:24s} no data: {r['missing'].splitlines()[0]}")
            continue
        extract = "cached" if r["cached"] else _hms(r["extraction_s"])
        lines.append(f"{r['encoder']:20s} {r['task']:24s} {r['clips']:9d} {r['audio_hours']:8.2f} {extract:>9s} "
                     f"{_hms(r['probe_s']):>9s}")  # fmt: skip
    lines.append(
        f"total <= {_hms(plan['total_s'])} on {plan['device']} ({plan['precision']}, batch {plan['batch_size']}); "
        f"matmul peak {plan['matmul_peak_gflop_per_s']:.0f} GFLOP/s. Probe times are upper estimates (every L2 point, "
        f"{100 * plan['probe_efficiency']:.0f}% of peak); early stopping usually ends sooner. Nothing was extracted."
    )
    return "\n".join(lines)
