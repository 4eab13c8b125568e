"""Per-layer probes: every stage / hidden layer of one extraction probed on its own, the layer chosen on validation.

An encoder built with `@layers=all` returns all its layers' pooled embeddings concatenated, and `layers` names
each one's columns, so the embedding cache and the extraction pipeline are unchanged: one pass embeds every
layer. Here each layer's columns get the full probe protocol (grid, early stopping, seeds, folds) as if they
were an encoder of their own. The reported layer is the one with the best validation metric (mean over seeds
and folds; ties go to the shallower layer); the test scores of the other layers are kept for the per-layer
figure and table but never consulted to choose.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from hares.io import atomic_path


def validation_score(result: dict[str, Any]) -> float:
    """A task result's validation metric, mean over folds and seeds (what the layer choice reads)."""
    return float(np.mean([s["valid"] for f in result["folds"] for s in f["selected"]]))


def choose_layer(valid: Sequence[float]) -> int:
    """Index of the best validation score; ties go to the first (shallowest) layer."""
    return int(np.argmax(np.asarray(valid, dtype=np.float64)))


def evaluate_layers(
    encoder: Any,
    spec: Any,
    clips: Sequence[Any],
    protocol: Any,
    cache_dir: Path,
    device: torch.device,
    batch_size: int,
    num_workers: int,
    progress: bool,
    precision: str = "fp32",
    shard_size: int = 1024,
) -> dict[str, Any]:
    """`evaluate_task` for each layer's columns of one cached extraction; the result is the chosen layer's.

    The returned dict is the chosen layer's task result plus `layer` (its name) and `layers` (per layer: name,
    dim, validation score, test score and std, all in percent).
    """
    from hares.evaluate.run import evaluate_task

    per_layer = []
    for name, columns in encoder.layers:
        result = evaluate_task(encoder, spec, clips, protocol, cache_dir, device, batch_size, num_workers, progress,
                               precision, shard_size, columns=columns)  # fmt: skip
        per_layer.append((name, columns, result))
    best = choose_layer([validation_score(r) for _, _, r in per_layer])
    name, _, chosen = per_layer[best]
    table = [
        {
            "name": n,
            "dim": c.stop - c.start,
            "valid": 100 * validation_score(r),
            "score": r["score"],
            "std": r["std"],
        }
        for n, c, r in per_layer
    ]
    return {**chosen, "layer": name, "layers": table}


def has_layers(results: dict[str, Any]) -> bool:
    return any(r.get("layers") for r in results["results"])


def render_layers_markdown(results: dict[str, Any]) -> list[str]:
    """The per-layer section of report.md: one table per encoder x task, the chosen layer in bold."""
    lines = ["", "## Per-layer probes", "", "Layer chosen on validation only (bold); test scores of every layer shown."]
    for r in results["results"]:
        if not r.get("layers"):
            continue
        lines += ["", f"**{r['encoder']} / {r['task']}** ({r['metric']}, %)", "", "| layer | dim | valid | test |",
                  "|---|---|---|---|"]  # fmt: skip
        for row in r["layers"]:
            mark = "**" if row["name"] == r["layer"] else ""
            lines.append(f"| {mark}{row['name']}{mark} | {row['dim']} | {row['valid']:.1f} | "
                         f"{row['score']:.1f} ± {row['std']:.1f} |")  # fmt: skip
    return lines


def plot_layers(results: dict[str, Any], path: str | os.PathLike) -> None:
    """Validation and test score per layer, one panel per encoder x task, the chosen layer marked."""
    from matplotlib.figure import Figure

    rows = [r for r in results["results"] if r.get("layers")]
    cols = min(3, len(rows))
    nrows = -(-len(rows) // cols)
    fig = Figure(figsize=(4.5 * cols, 3.2 * nrows))
    axes = np.atleast_1d(fig.subplots(nrows, cols, squeeze=False)).ravel()
    for ax, r in zip(axes, rows):
        names = [row["name"] for row in r["layers"]]
        x = np.arange(len(names))
        ax.plot(x, [row["valid"] for row in r["layers"]], "o-", label="validation")
        ax.errorbar(x, [row["score"] for row in r["layers"]], yerr=[row["std"] for row in r["layers"]], fmt="s--",
                    capsize=2, label="test")  # fmt: skip
        ax.axvline(names.index(r["layer"]), color="grey", lw=0.8, ls=":", label="chosen (validation)")
        ax.set_xticks(x)
        ax.set_xticklabels(names, rotation=45, ha="right", fontsize=7)
        ax.set_title(f"{r['encoder']} / {r['task']}", fontsize=9)
        ax.set_ylabel(f"{r['metric']} (%)")
        ax.legend(fontsize=7)
    for ax in axes[len(rows) :]:
        ax.set_visible(False)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120)
