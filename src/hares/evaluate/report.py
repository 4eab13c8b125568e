"""The evaluation report: `report.csv`, a Table-4-style `report.md`, `report.png` and `results.json`.

Per-layer encoders (`@layers=all`) add a per-layer section to report.md and `report_layers.png`.

All four are rendered from the results dict of `run_eval` and written atomically.
"""

from __future__ import annotations

import csv
import io
import os
from pathlib import Path
from typing import Any

from hares.evaluate.layers import has_layers, plot_layers, render_layers_markdown
from hares.evaluate.metrics import DOMAINS, domain_averages, hares_score
from hares.io import atomic_path, write_json, write_text

CSV_COLUMNS = ("encoder", "task", "domain", "metric", "score", "std")
DISPLAY = {
    "audioset": "AudioSet",
    "birdsong": "Birdsong",
    "tut18": "TUT18",
    "esc50": "ESC-50",
    "speech_commands_v1": "Speech Comm. v1",
    "speech_commands_v2": "Speech Comm. v2",
    "voxforge": "VoxForge",
    "voxceleb1": "VoxCeleb",
    "fluent_speech_commands": "Fluent Comm.",
    "nsynth_pitch": "NSynth-Pitch",
    "nsynth_instrument": "NSynth-Instrument",
    "magnatagatune": "MagnaTagATune",
}


def _benchmark_tasks() -> list[str]:
    from hares.tasks import list_tasks

    return list_tasks()


def _layout(results: dict[str, Any]) -> tuple[list[str], dict[str, list[str]], dict[tuple[str, str], dict]]:
    """Encoders in order, tasks grouped by domain (benchmark order first), and rows keyed (encoder, task)."""
    rows = {(r["encoder"], r["task"]): r for r in results["results"]}
    encoders = list(dict.fromkeys(r["encoder"] for r in results["results"]))
    order = {t: i for i, t in enumerate(_benchmark_tasks())}
    tasks = sorted(dict.fromkeys(r["task"] for r in results["results"]), key=lambda t: (order.get(t, len(order)), t))
    domains: dict[str, list[str]] = {}
    for t in tasks:
        domains.setdefault(next(r["domain"] for r in results["results"] if r["task"] == t), []).append(t)
    ordered = [d for d in DOMAINS if d in domains] + sorted(d for d in domains if d not in DOMAINS)
    return encoders, {d: domains[d] for d in ordered}, rows


def render_csv(results: dict[str, Any]) -> str:
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results["results"]:
        writer.writerow([r["encoder"], r["task"], r["domain"], r["metric"], f"{r['score']:.4f}", f"{r['std']:.4f}"])
    return buf.getvalue()


def render_markdown(results: dict[str, Any]) -> str:
    """Tasks grouped by domain with domain averages and the HARES score, one column per encoder."""
    encoders, domains, rows = _layout(results)
    benchmark = _benchmark_tasks()

    def cell(r: dict | None) -> str:
        if r is None:
            return "-"
        return f"{r['score']:.1f} ± {r['std']:.1f}" if r.get("std") else f"{r['score']:.1f}"

    lines = ["# HARES evaluation", "", "| Tasks | " + " | ".join(encoders) + " |", "|---" * (len(encoders) + 1) + "|"]
    scores = {e: {t: rows[e, t]["score"] for (e2, t) in rows if e2 == e} for e in encoders}
    task_domain = {t: d for d, ts in domains.items() for t in ts}
    averages = {e: domain_averages(scores[e], {t: task_domain[t] for t in scores[e]}) for e in encoders}
    for domain, tasks in domains.items():
        lines.append(f"| *{domain.capitalize()}* |" + " |" * len(encoders))
        for t in tasks:
            metric = next(rows[e, t]["metric"] for e in encoders if (e, t) in rows)
            name = f"{DISPLAY.get(t, t)} ({metric})"
            lines.append(f"| {name} | " + " | ".join(cell(rows.get((e, t))) for e in encoders) + " |")
        avg = [averages[e].get(domain) for e in encoders]
        lines.append("| Avg. | " + " | ".join("-" if a is None else f"{a:.1f}" for a in avg) + " |")
    all_tasks = [t for ts in domains.values() for t in ts]
    hares = [hares_score(scores[e], benchmark) for e in encoders]
    if all(h is not None for h in hares):
        lines.append("| **HARES** | " + " | ".join(f"**{h:.1f}**" for h in hares) + " |")
    else:
        means = [sum(scores[e].values()) / len(scores[e]) if scores[e] else None for e in encoders]
        lines.append(f"| Mean ({len(all_tasks)} tasks; HARES needs all 12) | "
                     + " | ".join("-" if m is None else f"{m:.1f}" for m in means) + " |")  # fmt: skip
    lines += ["", "Scores in %, mean ± std over probe seeds (accuracy, or mAP where marked)."]
    lines += _markdown_details(results)
    if has_layers(results):
        lines += render_layers_markdown(results)
    return "\n".join(lines) + "\n"


def _markdown_details(results: dict[str, Any]) -> list[str]:
    lines = ["", "## Bad audio (skipped)", ""]
    bad = {}
    for r in results["results"]:
        for f in r.get("bad_files", []):
            bad.setdefault(r["task"], set()).add(f)
    if bad:
        for task, files in sorted(bad.items()):
            lines.append(f"- {task}: {len(files)} file(s)")
            lines += [f"  - `{f}`" for f in sorted(files)]
    else:
        lines.append("None.")
    lines += ["", "## Provenance", ""]
    sha = results.get("git_sha") or "unknown"
    dirty = " + local changes" if results.get("git_dirty") else ""
    lines.append(f"- hares {results.get('hares_version')} (git {sha}{dirty}), device {results.get('device')}, "
                 f"{results.get('created_utc')}")  # fmt: skip
    for label, info in results.get("encoders", {}).items():
        seed = f", seed {info['seed']}" if info.get("seed") is not None else ""
        lines.append(f"- encoder `{label}` = `{info['spec']}` ({info['kind']}, {info['embed_dim']}-d{seed}), "
                     f"weights sha256 `{info['weights_hash'][:16]}`")  # fmt: skip
    probe = results.get("protocol", {}).get("probe", {})
    if probe:
        lines.append(f"- probe: lr {list(probe['lrs'])} x weight decay {list(probe['weight_decays'])}, batch "
                     f"{probe['batch_size']}, <= {probe['max_epochs']} epochs, patience {probe['patience']}, "
                     f"seeds {list(probe['seeds'])}; full record in results.json")  # fmt: skip
    return lines


def plot(results: dict[str, Any], path: str | os.PathLike) -> None:
    """Per-task scores, encoders side by side, tasks grouped by domain."""
    from matplotlib.figure import Figure  # no pyplot: no global state, no display backend

    encoders, domains, rows = _layout(results)
    tasks = [t for ts in domains.values() for t in ts]
    width = 0.8 / max(1, len(encoders))
    fig = Figure(figsize=(min(14.0, max(5.0, 2 + 0.55 * len(tasks) * max(1, len(encoders)) ** 0.5)), 4.0))
    ax = fig.subplots()
    for k, e in enumerate(encoders):
        xs = [i + (k - (len(encoders) - 1) / 2) * width for i in range(len(tasks))]
        ys = [rows[e, t]["score"] if (e, t) in rows else 0.0 for t in tasks]
        errs = [rows[e, t]["std"] if (e, t) in rows else 0.0 for t in tasks]
        ax.bar(xs, ys, width, yerr=errs, label=e, capsize=2)
    start = 0
    for d, ts in domains.items():
        if start:
            ax.axvline(start - 0.5, color="grey", lw=0.8, ls="--")
        ax.text(start + (len(ts) - 1) / 2, 101, d, ha="center", va="bottom", fontsize=9)
        start += len(ts)
    ax.set_xticks(range(len(tasks)))
    ax.set_xticklabels([DISPLAY.get(t, t) for t in tasks], rotation=30, ha="right")
    ax.set_ylim(0, 108)
    ax.set_ylabel("score (%)")
    ax.legend(fontsize=8, loc="center left", bbox_to_anchor=(1.01, 0.5), title="encoder", title_fontsize=8)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def write_report(results: dict[str, Any], out: str | os.PathLike) -> None:
    """Write report.csv, report.md, report.png and results.json into `out`, each atomically."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    write_text(out / "report.csv", render_csv(results))
    write_text(out / "report.md", render_markdown(results))
    plot(results, out / "report.png")
    if has_layers(results):
        plot_layers(results, out / "report_layers.png")
    write_json(out / "results.json", results)
