"""MLP probe benchmark: does the AudioSet MLP probe reach the best its architecture can score? (docs/PROTOCOL.md
section 3; BENCHMARKS.md "MLP probe")

On synthetic embeddings where a linear model is Bayes-optimal (`tests/evaluate/_eval_helpers.py`: 20,000 / 3,000 /
5,000 train / valid / test rows of 64 features), three results side by side:
1. **reference**: scikit-learn `LogisticRegression` with C chosen on valid from 15 half-decades (multi-label: one
   model per class, one C for all), on the same standardised features: the linear optimum;
2. **probe**: the hares MLP probe as pinned (`train_probe(kind="mlp")`, probe seed `--seed`), and its time;
3. **oracle** (`--oracle-epochs` > 0): the same grid (or `--lrs` x `--wds`) run for that many epochs without early
   stopping, every head scored on valid and on test after every epoch (`train_probe`'s `epoch_hook`, analysis
   only). The best test score of any head at any epoch bounds what any other grid point, stopping rule or budget
   could have scored with this architecture; it is optimistic, being chosen on test.
If the probe is close to the oracle and both are below the reference, the gap is the MLP's (its larger hypothesis
class at this data size), not the optimiser's. Writes `<out>/mlp_probe.json` and `<out>/mlp_probe.png` (valid and
test curves of every oracle head, with the reference and the probe's score).

    python benchmarks/mlp_probe.py --task multilabel100 --threads 1      # AudioSet-like (~1 hour on one core)
    python benchmarks/mlp_probe.py --task blobs20 --oracle-epochs 0       # reference and probe only
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "evaluate"))  # the synthetic tasks and the reference the tests use

from _eval_helpers import blobs, multilabel_blobs, sklearn_tuned  # noqa: E402

from hares.evaluate.metrics import METRICS  # noqa: E402
from hares.evaluate.probe import ArrayRows, ProbeConfig, train_probe  # noqa: E402
from hares.io import atomic_path, write_json  # noqa: E402

SIZES = [20000, 3000, 5000]
TASKS = {  # name: (splits for (sizes, data seed), multi-label)
    "blobs20": (lambda n, seed: blobs(n, classes=20, dim=64, seed=seed, sep=0.3), False),
    "multilabel20": (lambda n, seed: multilabel_blobs(n, classes=20, dim=64, seed=seed), True),
    "multilabel100": (lambda n, seed: multilabel_blobs(n, classes=100, dim=64, seed=seed, bias=-3.5), True),
}
C_GRID = 10.0 ** np.arange(-5, 2.1, 0.5)


def run_probe(splits, multilabel: bool, cfg: ProbeConfig, hook=None) -> tuple[dict, float]:
    rows = [(ArrayRows(x), torch.from_numpy(y if multilabel else y.astype(np.int64))) for x, y in splits]
    classes = splits[0][1].shape[1] if multilabel else int(splits[0][1].max()) + 1
    metric = "mAP" if multilabel else "accuracy"
    start = time.perf_counter()
    result = train_probe(
        *rows, kind="mlp", multilabel=multilabel, num_classes=classes, metric=metric, cfg=cfg, epoch_hook=hook
    )
    return result, time.perf_counter() - start


def oracle(splits, multilabel: bool, cfg: ProbeConfig, epochs: int) -> dict:
    """Every head's valid and test score (%) after every epoch, `epochs` epochs, no early stopping."""
    metric = METRICS["mAP" if multilabel else "accuracy"]
    targets = [torch.from_numpy(y if multilabel else y.astype(np.int64)) for _, y in splits[1:]]
    grid = cfg.grid()
    curves = np.full((2, len(grid), epochs), np.nan)  # (valid/test, head, epoch)

    def hook(seed, epoch, heads, valid_logits, test_logits) -> None:
        for j, h in enumerate(heads.tolist()):
            curves[0, h, epoch - 1] = 100 * metric(valid_logits[j], targets[0])
            curves[1, h, epoch - 1] = 100 * metric(test_logits[j], targets[1])
        if epoch % 25 == 0:
            best = np.nanmax(curves[1, :, :epoch])
            print(f"  oracle epoch {epoch}/{epochs}: best test of any head so far {best:.2f}", flush=True)

    never = dataclasses.replace(cfg, max_epochs=epochs, max_steps=0, patience=epochs + 1)
    _, seconds = run_probe(splits, multilabel, never, hook)
    heads = []
    for j, (lr, wd) in enumerate(grid):
        v, t = curves[0, j], curves[1, j]
        b = int(np.argmax(v))
        heads.append({"lr": lr, "weight_decay": wd, "best_valid": float(v[b]), "epoch": b + 1,
                      "test_at_best_valid": float(t[b]), "best_test": float(t.max()),
                      "best_test_epoch": int(t.argmax()) + 1})  # fmt: skip
    j, e = np.unravel_index(np.argmax(curves[1]), curves[1].shape)
    return {
        "epochs": epochs,
        "seconds": seconds,
        "best_test": float(curves[1, j, e]),
        "best_test_head": {"lr": grid[j][0], "weight_decay": grid[j][1], "epoch": int(e) + 1},
        "heads": heads,
        "curves": curves.tolist(),
    }


def plot(record: dict, path: Path) -> None:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4))
    axes = fig.subplots(1, 2, sharey=True)
    curves = np.array(record["oracle"]["curves"])
    lrs = sorted({h["lr"] for h in record["oracle"]["heads"]})
    wds = sorted({h["weight_decay"] for h in record["oracle"]["heads"]})
    colors = dict(zip(lrs, ["tab:blue", "tab:orange", "tab:green", "tab:red", "tab:purple", "tab:brown"] * 3))
    styles = dict(zip(wds, [":", "--", "-", "-."] * 3))
    ref, probe = 100 * record["reference"]["test"], 100 * record["probe"]["test"]
    top = max(ref, 100 * record["reference"]["valid"], probe, float(np.nanmax(curves)))
    for ax, k, name in ((axes[0], 0, "valid"), (axes[1], 1, "test")):
        for j, h in enumerate(record["oracle"]["heads"]):
            ax.plot(np.arange(1, curves.shape[2] + 1), curves[k, j], color=colors[h["lr"]],
                    ls=styles[h["weight_decay"]], lw=1, label=f"lr {h['lr']:g}, wd {h['weight_decay']:g}")  # fmt: skip
        ax.axhline(100 * record["reference"][name], color="black", lw=1.2, label="linear optimum (scikit-learn)")
        if name == "test":
            ax.axhline(probe, color="grey", lw=1.2, ls="--", label="hares MLP probe (pinned)")
        ax.set_title(f"{record['task']}: {name}")
        ax.set_xlabel("epoch")
        ax.set_ylim(top - 6, top + 0.5)
    axes[0].set_ylabel("mAP (%)" if record["multilabel"] else "accuracy (%)")
    axes[1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5))
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=110, bbox_inches="tight")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--task", choices=sorted(TASKS), default="multilabel100")
    parser.add_argument("--data-seed", type=int, default=7)
    parser.add_argument("--seed", type=int, default=0, help="probe seed (initialisation, minibatch order)")
    parser.add_argument("--lrs", type=float, nargs="+", help="the grid's learning rates (default: the pinned ones)")
    parser.add_argument("--wds", type=float, nargs="+", help="the grid's weight decays (default: the pinned ones)")
    parser.add_argument("--dropout", type=float, help="the MLP's dropout (default: the pinned 0.1)")
    parser.add_argument("--oracle-epochs", type=int, default=400)
    parser.add_argument("--scale", type=float, default=1.0, help="rows per split x this (e.g. 0.05: a smoke run)")
    parser.add_argument("--threads", type=int, default=0, help="torch threads (0: torch's default)")
    parser.add_argument("--out", type=Path, default=Path("runs/bench-mlp-probe"))
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    make, multilabel = TASKS[args.task]
    splits = make([max(20, round(n * args.scale)) for n in SIZES], args.data_seed)
    grid = {k: tuple(v) for k, v in (("lrs", args.lrs), ("weight_decays", args.wds)) if v}
    if args.dropout is not None:
        grid["mlp_dropout"] = args.dropout
    cfg = ProbeConfig(seeds=(args.seed,), **grid)
    record = {
        "task": args.task,
        "multilabel": multilabel,
        "data_seed": args.data_seed,
        "rows": [len(x) for x, _ in splits],
        "threads": torch.get_num_threads(),
    }

    start = time.perf_counter()
    test, valid, c = sklearn_tuned(splits, C_GRID, multilabel)
    record["reference"] = {"test": test, "valid": valid, "C": c, "seconds": time.perf_counter() - start}
    print(f"reference (scikit-learn, C {c:g} chosen on valid): valid {100 * valid:.2f}, test {100 * test:.2f}")

    result, seconds = run_probe(splits, multilabel, cfg)
    chosen = result["seeds"][0]
    record["probe"] = {"test": result["test"], "seconds": seconds, "chosen": {k: v for k, v in chosen.items()
                       if k in ("lr", "weight_decay", "best_epoch", "valid", "epochs_run")},
                       "grid_valid": chosen["grid_valid"], "config": result["config"]}  # fmt: skip
    print(f"hares MLP probe: test {100 * result['test']:.2f} ({seconds:.0f} s; chose lr {chosen['lr']:g}, "
          f"wd {chosen['weight_decay']:g}, epoch {chosen['best_epoch']} of {chosen['epochs_run']})")  # fmt: skip

    args.out.mkdir(parents=True, exist_ok=True)
    if args.oracle_epochs:
        record["oracle"] = oracle(splits, multilabel, cfg, args.oracle_epochs)
        best = record["oracle"]["best_test_head"]
        print(f"oracle ({args.oracle_epochs} epochs, no early stopping, {record['oracle']['seconds']:.0f} s): best "
              f"test of any head at any epoch {record['oracle']['best_test']:.2f} (lr {best['lr']:g}, "
              f"wd {best['weight_decay']:g}, epoch {best['epoch']})")  # fmt: skip
        plot(record, args.out / "mlp_probe.png")
    write_json(args.out / "mlp_probe.json", record)
    ref = 100 * record["reference"]["test"]
    print(f"probe - reference: {100 * result['test'] - ref:+.2f} points", end="")
    if args.oracle_epochs:
        print(f"; probe - oracle: {100 * result['test'] - record['oracle']['best_test']:+.2f} points", end="")
    print(f"\nwrote {args.out / 'mlp_probe.json'}")


if __name__ == "__main__":
    main()
