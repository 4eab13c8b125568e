"""Bidir-CPC and wav2vec 2.0 at CPU scale (BENCHMARKS.md, "Waveform frameworks").

    python benchmarks/waveform.py cost      # full-size networks: CPU step time, peak memory, FLOPs, GPU-hours
    python benchmarks/waveform.py synth --data DIR --steps 300 --out runs/wf   # tiny nets vs random init, six tasks

`cost`: one training step of the paper presets' objective (forward, backward, Adam update) on in-memory
waveforms at batch 8, each network in a fresh process (1 thread) so its peak resident memory (ru_maxrss) is its
own. CPC uses its paper crop (1.28 s); wav2vec 2.0 uses 2 s crops (its paper crop, 15.625 s, at batch 8 does not
fit the dev box's shared 23 GB). FLOPs of one step are counted with `torch.utils.flop_counter` (matmuls and
convolutions) at batch 1 and the paper crop, plus the LSTMs counted analytically (the counter does not see them:
2 x 4H(in + H) per frame and layer forward, twice that backward); the GPU-hours estimate divides the paper run's
FLOPs by an assumed sustained rate (stated in the output).

`synth`: pre-train `cpc_bidir_tiny` and `wav2vec2_tiny` on the hares-synth pool (debug presets, fixed steps), then
evaluate each with its random initialisation (same seed, same architecture) on the six hares-synth tasks.
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time
from pathlib import Path

import torch

COST = {  # preset, crop seconds measured on CPU
    "cpc_bidir": ("paper-cpc", 1.28),
    "wav2vec2_base": ("paper-wav2vec2", 2.0),
}


def _objective(preset: str, **overrides):
    from hares.models import create_model
    from hares.train.config import get_preset
    from hares.train.objectives import build_objective

    cfg = get_preset(preset, **overrides)
    torch.manual_seed(0)
    return cfg, build_objective(cfg, create_model(cfg.model), 0, 0)


def _step(objective, optimizer, wav: torch.Tensor, step: int) -> float:
    t = time.perf_counter()
    logs = objective({"wav": wav[:, None]}, generator=torch.Generator().manual_seed(step))
    logs["loss"].backward()
    optimizer.step()
    optimizer.zero_grad(set_to_none=True)
    objective.on_step_end()
    return time.perf_counter() - t


def lstm_flops(objective, frames: int, batch: int) -> float:
    """Forward + backward FLOPs of every LSTM layer (3 x the forward's 2 * 4H(in + H) per frame)."""
    total = 0.0
    for m in objective.modules():
        if isinstance(m, torch.nn.LSTM):
            h, i = m.hidden_size, m.input_size
            total += 3 * 2 * 4 * h * (i + h) * frames * batch
    return total


def count_flops(preset: str) -> dict:
    """FLOPs of one training step at batch 1 and the preset's crop (forward + backward)."""
    from torch.utils.flop_counter import FlopCounterMode

    cfg, objective = _objective(preset)
    n = int(round(cfg.crop_seconds * 16000))
    wav = 0.1 * torch.randn(1, 1, n)
    with FlopCounterMode(display=False) as fc:
        logs = objective({"wav": wav}, generator=torch.Generator().manual_seed(0))
        logs["loss"].backward()
    counted = float(fc.get_total_flops())
    frames = objective.encoder.encoder(wav[:, 0]).shape[1] if cfg.objective == "cpc" else 0
    lstm = lstm_flops(objective, frames, 1)
    return {"per_clip": counted + lstm, "lstm": lstm, "crop_s": cfg.crop_seconds}


def cost_child(model: str, batch: int, steps: int) -> None:
    torch.set_num_threads(1)
    preset, crop = COST[model]
    cfg, objective = _objective(preset, crop_seconds=crop)
    objective.train()
    optimizer = torch.optim.Adam(objective.parameters(), lr=cfg.lr)
    wav = 0.1 * torch.randn(batch, int(round(crop * 16000)), generator=torch.Generator().manual_seed(0))
    base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    times = [_step(objective, optimizer, wav, s) for s in range(steps)]
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    params = sum(p.numel() for p in objective.encoder.parameters())
    out = {"model": model, "preset": preset, "batch": batch, "crop_s": crop, "params": params}
    out.update({"step_s": times, "rss_before_mb": base, "peak_rss_mb": peak, "threads": 1})
    print(json.dumps(out))


def cost(args) -> None:
    rows = []
    for model in COST:
        cmd = [sys.executable, __file__, "cost-child", model, str(args.batch), str(args.steps)]
        res = subprocess.run(cmd, capture_output=True, text=True, check=True)
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
        r = rows[-1]
        steady = min(r["step_s"][1:]) if len(r["step_s"]) > 1 else r["step_s"][0]
        print(
            f"{model}: {r['params']:,} params, batch {r['batch']} x {r['crop_s']} s, step {steady:.1f} s "
            f"(first {r['step_s'][0]:.1f} s), peak RSS {r['peak_rss_mb']:.0f} MB (before the first step "
            f"{r['rss_before_mb']:.0f} MB), 1 thread",
            flush=True,
        )
    from hares.train.config import get_preset

    print(f"GPU estimate at a sustained {args.tflops:.0f} TFLOP/s per GPU (bf16; an assumption, not measured):")
    for preset, _ in COST.values():
        f = count_flops(preset)
        cfg = get_preset(preset)
        total = f["per_clip"] * cfg.batch_size * cfg.steps
        hours = total / (args.tflops * 1e12) / 3600
        print(
            f"  {preset}: {f['per_clip'] / 1e9:.1f} GFLOP per {f['crop_s']} s clip (LSTM {f['lstm'] / 1e9:.1f}), "
            f"x batch {cfg.batch_size} x {cfg.steps:,} steps = {total:.2e} FLOP = {hours:,.0f} GPU-hours",
            flush=True,
        )


def synth(args) -> None:
    from hares.data import synth as hs
    from hares.evaluate import run_eval
    from hares.train import pretrain
    from hares.train.config import get_preset

    torch.set_num_threads(args.threads)
    data, out = Path(args.data), Path(args.out)
    tasks = [f"csv:{data / f'{t.name}.csv'}" for t in hs.TASKS]
    encoders = []
    chosen = {"cpc": ("debug-cpc", "cpc_bidir_tiny"), "wav2vec2": ("debug-wav2vec2", "wav2vec2_tiny")}
    for preset, model in (chosen[f] for f in args.frameworks.split(",")):
        cfg = get_preset(
            preset, data=str(data / "pool.csv"), out=str(out / preset), steps=args.steps, batch_size=args.batch,
            lr=args.lr, warmup_steps=args.steps // 20, log_every=10, ckpt_every=args.steps, progress=False,
        )  # fmt: skip
        t0 = time.time()
        ckpt = pretrain(cfg)
        print(f"{preset}: {args.steps} steps in {time.time() - t0:.0f} s", flush=True)
        encoders += [f"{model}=random:{model}", f"{model}-pretrained={model}:{ckpt}"]
    res = run_eval(encoders, tasks, data_root=data, out=out / "eval", cache_dir=out / "cache", device="cpu",
                   num_workers=0, progress=False)  # fmt: skip
    by: dict[str, dict[str, float]] = {}
    for r in res["results"]:
        by.setdefault(r["encoder"], {})[r["task"].removeprefix("csv:")] = r["score"]
    for enc, scores in by.items():
        mean = sum(scores.values()) / len(scores)
        print(f"{enc}: " + " ".join(f"{k}={v:.1f}" for k, v in scores.items()) + f" mean={mean:.1f}")


def main() -> None:
    if len(sys.argv) > 1 and sys.argv[1] == "cost-child":
        cost_child(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("cost")
    c.add_argument("--batch", type=int, default=8)
    c.add_argument("--steps", type=int, default=3)
    c.add_argument("--tflops", type=float, default=100.0, help="assumed sustained bf16 TFLOP/s per GPU")
    s = sub.add_parser("synth")
    s.add_argument("--data", required=True, help="a hares-synth folder (pool.csv and the six task CSVs)")
    s.add_argument("--out", required=True)
    s.add_argument("--steps", type=int, default=300)
    s.add_argument("--batch", type=int, default=32)
    s.add_argument("--lr", type=float, default=2e-3)
    s.add_argument("--threads", type=int, default=1)
    s.add_argument("--frameworks", default="cpc,wav2vec2", help="cpc, wav2vec2 or both (two runs side by side)")
    args = p.parse_args()
    cost(args) if args.cmd == "cost" else synth(args)


if __name__ == "__main__":
    main()
