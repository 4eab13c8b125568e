"""One row of the demo's ablation table (BENCHMARKS.md, "Embedded demo"): SimCLR pre-training of the demo network
on a hares-synth pool for a fixed number of steps with config overrides, then the HARES evaluation of the result
on the six tasks. Prints one line: per-task scores and the six-task mean of `simclr`.

    python benchmarks/demo_ablation.py --data runs/demo/data/hares-synth-v5-seed0 --steps 600 --out runs/abl/base
    python benchmarks/demo_ablation.py --data ... --steps 600 --out runs/abl/nomix --set mix_max_ratio=0.0

Fixed step counts (not the demo's time budget) make rows comparable; two runs side by side with `--threads 1`
use a 2-core machine fully. The logmel and random columns do not depend on pre-training: run them once with
`hares eval`. Single runs differ by up to 4 points between pre-training seeds (`--set seed=1`).
"""

from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import torch

from hares.data import synth
from hares.demo import DEMO_MODEL, pretrain_config
from hares.evaluate import run_eval
from hares.train import pretrain
from hares.train.config import apply_overrides


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", required=True, help="a hares-synth folder (holding pool.csv and the six task CSVs)")
    p.add_argument("--out", required=True)
    p.add_argument("--steps", type=int, default=600)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", help="pre-training config override")
    args = p.parse_args()
    torch.set_num_threads(args.threads)
    data, out = Path(args.data), Path(args.out)
    if (out / "pretrain").exists():
        shutil.rmtree(out / "pretrain")
    cfg = pretrain_config(data / "pool.csv", out / "pretrain", steps=args.steps, ckpt_every=args.steps, progress=False)
    cfg = apply_overrides(cfg, args.set)
    t0 = time.time()
    ckpt = pretrain(cfg)
    t1 = time.time()
    tasks = [f"csv:{data / f'{t.name}.csv'}" for t in synth.TASKS]
    res = run_eval([f"simclr={DEMO_MODEL}:{ckpt}"], tasks, data_root=data, out=out / "eval", cache_dir=out / "cache",
                   device="cpu", num_workers=0, progress=False)  # fmt: skip
    rows = [r for r in res["results"] if r["encoder"] == "simclr"]
    scores = {r["task"].removeprefix("csv:"): r["score"] for r in rows}
    mean = sum(scores.values()) / len(scores)
    row = " ".join(f"{k}={v:.1f}" for k, v in scores.items())
    took = f"pretrain {t1 - t0:.0f} s for {args.steps} steps, eval {time.time() - t1:.0f} s"
    print(f"{out.name}: {row} mean={mean:.1f} | {took}")


if __name__ == "__main__":
    main()
