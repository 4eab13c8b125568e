"""`hares demo`: the paper's story in miniature on a laptop CPU, with no download and no GPU.

1. generate (or reuse) hares-synth: six small tasks, two per domain, plus an unlabelled pool (`hares.data.synth`);
2. pre-train a small Slowfast NFNet (the F0 design at reduced widths) with SimCLR on the pool (`hares.train`);
3. evaluate `simclr`, `random` (the same network untrained) and `logmel` on the six tasks with the HARES protocol
   through the custom-task path (`hares.evaluate.run_eval`, tasks `csv:PATH`);
4. write `OUT/report.{csv,md,png}` and print the table.

The time budget (`--budget-minutes`) caps pre-training: it runs in stretches, re-planning the step count from the
measured step time after each, and the final count is printed, so `--seed S --steps N` reproduces a run exactly.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import shutil
import statistics
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

DEMO_MODEL = "sf_nfnet_micro"


@dataclass(frozen=True)
class DemoSettings:
    """Sizes of one demo run; `QUICK` is the seconds-long path the test suite runs end to end."""

    steps: int = 3000  # at most this many pre-training steps; the budget usually decides
    calibration_steps: int = 30  # the first stretch, timed; later stretches re-plan the step count
    batch_size: int = 64
    crop_seconds: float = 0.5
    lr: float = 2e-3
    warmup_steps: int = 20
    proj_hidden: int = 256
    proj_dim: int = 64
    pool_size: int | None = None  # None: the generator's default
    eval_fraction: float = 0.08  # share of the budget kept for evaluating the three encoders (~20 s on 2 cores)
    probe_overrides: tuple[tuple[str, Any], ...] = ()
    quick: bool = False


FULL = DemoSettings()
QUICK = DemoSettings(
    steps=2,
    batch_size=4,
    crop_seconds=0.5,
    warmup_steps=1,
    proj_hidden=16,
    proj_dim=8,
    pool_size=8,
    eval_fraction=0.5,
    probe_overrides=(("seeds", (0,)), ("max_epochs", 5), ("patience", 2), ("lrs", (1e-3,)), ("weight_decays", (0.0,))),
    quick=True,
)


def _log(msg: str) -> None:
    print(f"[demo {time.strftime('%H:%M:%S')}] {msg}", flush=True)


_RESTART_S = 3.0  # one resumption of the run (model, optimiser and data loader rebuilt) plus its checkpoint write
_STEP_MARGIN = 1.05  # plan the last stretch with a slightly longer step than measured


def _steady_step_time(metrics: Path, after_step: int) -> float:
    """Seconds per step once warm, over the log rows past `after_step`: their median, leaving out the first row of
    the stretch (which pays for start-up, first-touch allocations and oneDNN's kernel choice)."""
    rows = [json.loads(line) for line in metrics.read_text().splitlines() if line.strip()]
    times = [r["step_time_s"] for r in rows if r["step"] > after_step]
    return float(statistics.median(times[1:] or times))


def pretrain_config(pool_csv: Path, out: Path, s: DemoSettings = FULL, seed: int = 0, **overrides: Any):
    """The demo's SimCLR pre-training config (the `demo` preset with these settings) as a `PretrainConfig`."""
    from hares.train import get_preset

    return get_preset(
        "demo",
        model=DEMO_MODEL,
        data=str(pool_csv),
        data_format="manifest",
        out=str(out),
        seed=seed,
        crop_seconds=s.crop_seconds,
        batch_size=s.batch_size,
        lr=s.lr,
        warmup_steps=s.warmup_steps,
        proj_hidden=s.proj_hidden,
        proj_dim=s.proj_dim,
        log_every=max(1, min(10, s.calibration_steps)),  # the re-planning reads these rows' step times
        keep_checkpoints=1,
        **overrides,
    )


def _pretrain_to(cfg, steps: int):
    """Train the run in `cfg.out` to `steps` (checkpointing there), resuming it once it exists."""
    from hares.train import pretrain

    return pretrain(replace(cfg, steps=steps, ckpt_every=steps, resume=(Path(cfg.out) / "config.json").is_file()))


def _run_to_deadline(cfg, s: DemoSettings, deadline: float, metrics: Path) -> int:
    """Pre-train in stretches until the step count that fits before `deadline` is reached; returns it.

    The first stretch is the calibration; each later one runs half of the steps still planned, then the plan is
    redone from its own measured step time, so a slow start or a busy spell is corrected within the run. The
    learning rate is constant after warm-up and `resume` is bit-exact, so the stretches train exactly what one
    uninterrupted run of the returned step count trains (`--steps N`).
    """
    done = min(s.calibration_steps, s.steps)
    _pretrain_to(cfg, done)
    last = 0
    while True:
        per_step = _steady_step_time(metrics, last) * _STEP_MARGIN
        left = deadline - time.time() - _RESTART_S
        target = max(done, min(s.steps, done + int(max(0.0, left) / per_step)))
        _log(f"pre-training: {per_step:.3f} s/step over steps {last + 1}-{done} -> {target} steps in all")
        if target - done < max(4 * s.calibration_steps, target // 8):  # too short to be worth another re-plan
            return target
        last, done = done, done + (target - done) // 2
        _pretrain_to(cfg, done)


def _pretrain(pool_csv: Path, out: Path, s: DemoSettings, seed: int, deadline: float, steps: int | None) -> tuple:
    """SimCLR on the pool; returns (encoder checkpoint, steps run). Without `steps`, the budget decides them."""
    if out.exists():  # a fresh run: resuming an older one would blur the step count and the budget
        shutil.rmtree(out)
    cfg = pretrain_config(pool_csv, out, s, seed)
    if steps is None and s.quick:
        steps = s.steps
    if steps is None:  # run in stretches, re-planning the total from the measured step time after each
        steps = _run_to_deadline(cfg, s, deadline, out / "metrics.jsonl")
        _log(f"pre-training: {steps} steps fitted the budget (reproduce with --steps {steps})")
    ckpt = _pretrain_to(cfg, steps)
    return ckpt, steps


def run_demo(
    out: str | os.PathLike = "runs/demo",
    seed: int = 0,
    budget_minutes: float = 10.0,
    quick: bool = False,
    data_root: str | os.PathLike | None = None,
    steps: int | None = None,
    settings: DemoSettings | None = None,
    started_at: float | None = None,
) -> dict[str, Any]:
    """Run the whole demo; returns the evaluation results (also written to `out`).

    The budget counts from `started_at` (seconds since the epoch; default now): `make demo` passes the time it
    began, so setting up `.venv` on a fresh clone comes out of the same ten minutes."""
    from hares.data import synth
    from hares.evaluate import run_eval

    s = settings or (QUICK if quick else FULL)
    out = Path(out)
    start = time.time()
    budget_start = min(start, started_at) if started_at else start
    budget_s = budget_minutes * 60.0
    timings: dict[str, float] = {"setup_s": start - budget_start}
    if start - budget_start > budget_s / 2:
        _log(f"warning: {timings['setup_s']:.0f} s of the {budget_s:.0f} s budget went before the demo started")

    _log(f"1/3 hares-synth (seed {seed}{', quick' if s.quick else ''})")
    root = synth.generate(data_root or out / "data", seed=seed, quick=s.quick, pool_size=s.pool_size, log=_log)
    timings["generate_s"] = time.time() - start

    t = time.time()
    deadline = budget_start + budget_s * (1 - s.eval_fraction)
    _log(f"2/3 SimCLR pre-training of {DEMO_MODEL} on {root / 'pool.csv'}")
    ckpt, steps = _pretrain(root / "pool.csv", out / "pretrain", s, seed, deadline, steps)
    timings["pretrain_s"] = time.time() - t

    t = time.time()
    tasks = [f"csv:{root / f'{task.name}.csv'}" for task in synth.TASKS]
    encoders = [f"simclr={DEMO_MODEL}:{ckpt}", f"random=random:{DEMO_MODEL}@{seed}", "logmel"]
    _log(f"3/3 evaluating {', '.join(e.split('=')[0] for e in encoders)} on {len(tasks)} tasks")
    results = run_eval(
        encoders,
        tasks,
        data_root=root,
        out=out,
        cache_dir=out / "cache",
        device="cpu",
        num_workers=0,
        **dict(s.probe_overrides),
    )
    timings["evaluate_s"] = time.time() - t
    timings["total_s"] = time.time() - budget_start

    from hares.io import write_json

    summary = {
        "seed": seed,
        "quick": s.quick,
        "budget_minutes": budget_minutes,
        "pretrain_steps": steps,
        "settings": {k: v for k, v in s.__dict__.items() if k != "probe_overrides"},
        "probe_overrides": dict(s.probe_overrides),
        "timings": {k: round(v, 1) for k, v in timings.items()},
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {platform.system()}, "
        f"python {platform.python_version()}",
        "means": {label: agg["mean"] for label, agg in results["aggregates"].items()},
        "data": str(root),
    }
    write_json(out / "demo.json", summary)
    print((out / "report.md").read_text())
    means = summary["means"]
    _log(
        "six-task means: " + ", ".join(f"{k} {v:.1f}" for k, v in means.items())
        + f" | total {timings['total_s'] / 60:.1f} min (generate {timings['generate_s']:.0f} s, pre-train "
        f"{timings['pretrain_s']:.0f} s for {steps} steps, evaluate {timings['evaluate_s']:.0f} s)"
    )  # fmt: skip
    return results


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "demo",
        help="synthetic three-domain suite -> SimCLR pre-training -> evaluation vs random and logmel (CPU, minutes)",
        description="Generates hares-synth (or reuses it), pre-trains a small Slowfast NFNet with SimCLR on its "
        "unlabelled pool, evaluates simclr / random / logmel on its six tasks, and writes OUT/report.{csv,md,png}.",
    )
    p.add_argument("--out", default="runs/demo", help="output folder (default runs/demo)")
    p.add_argument("--seed", type=int, default=0, help="seed of the data, the pre-training and the probes")
    p.add_argument("--budget-minutes", type=float, default=10.0, help="total time budget (default 10)")
    p.add_argument("--steps", type=int, default=None, help="pre-training steps (default: what fits the budget)")
    p.add_argument("--data-root", default=None, help="where hares-synth is written (default OUT/data)")
    p.add_argument("--quick", action="store_true", help="tiny sizes and a few steps: seconds, for tests")
    p.add_argument(
        "--started-at",
        type=float,
        default=None,
        metavar="EPOCH",
        help="count the budget from this time (seconds since the epoch; `make demo` passes when it began)",
    )
    p.add_argument(
        "--threads",
        type=int,
        default=0,
        help="torch CPU threads (default: torch's choice); 1 is much faster on a machine shared with other jobs",
    )
    p.set_defaults(func=cmd_demo)


def cmd_demo(args: argparse.Namespace) -> int:
    if args.budget_minutes <= 0 or not math.isfinite(args.budget_minutes):
        raise SystemExit("--budget-minutes must be a positive number")
    if args.threads > 0:
        import torch

        torch.set_num_threads(args.threads)
    run_demo(
        args.out, args.seed, args.budget_minutes, args.quick, args.data_root, args.steps, started_at=args.started_at
    )
    return 0
