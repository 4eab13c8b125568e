"""The evaluation report: `report.csv`, a Table-4-style `report.md`, `report.png`, the paired tests
(`paired.csv`, forest plot `paired.png`) and `results.json`.

All are rendered from the results dict of `run_eval` (or a merge of runs, `hares report`) and written atomically.
Intervals and paired tests come from `hares.evaluate.stats`; published reference columns from
`hares.evaluate.references`. Per-layer encoders (`@layers=all`) add a per-layer section to report.md and
`report_layers.png` (`hares.evaluate.layers`).
"""

from __future__ import annotations

import csv
import io
import itertools
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hares.evaluate.layers import has_layers, plot_layers, render_layers_markdown
from hares.evaluate.metrics import DOMAINS, domain_averages, hares_score
from hares.io import atomic_path, write_json, write_text

CSV_COLUMNS = ("encoder", "task", "domain", "metric", "score", "std", "ci_low", "ci_high")
PAIRED_COLUMNS = (
    "encoder_a", "encoder_b", "target", "diff", "ci_low", "ci_high", "p", "p_holm", "significant", "winner"
)  # fmt: skip
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
    """One row per (encoder, task): score and std over seeds, and the bootstrap interval where computed (in %)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for r in results["results"]:
        ci = [f"{r[k]:.4f}" if r.get(k) is not None else "" for k in ("ci_low", "ci_high")]
        score = [f"{r['score']:.4f}", f"{r['std']:.4f}"]
        writer.writerow([r["encoder"], r["task"], r["domain"], r["metric"], *score, *ci])
    return buf.getvalue()


def render_paired_csv(results: dict[str, Any]) -> str:
    """Every paired test: difference a - b (points), its interval, raw and Holm-adjusted p, the significant winner."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow(PAIRED_COLUMNS)
    for t in results.get("stats", {}).get("paired", []):
        writer.writerow([t["a"], t["b"], t["target"], f"{t['diff']:.4f}", f"{t['ci_low']:.4f}", f"{t['ci_high']:.4f}",
                         f"{t['p']:.3g}", f"{t['p_holm']:.3g}", int(t["significant"]), t["winner"] or ""])  # fmt: skip
    return buf.getvalue()


def _fmt(value: float | None, ci: Sequence[float] | None = None) -> str:
    if value is None:
        return "-"
    return f"{value:.1f} [{ci[0]:.1f}, {ci[1]:.1f}]" if ci is not None else f"{value:.1f}"


def _winners(results: dict[str, Any], encoders: list[str]) -> set[tuple[str, str]]:
    """(encoder, target) where the encoder beats every other encoder significantly (Holm-adjusted)."""
    wins: dict[tuple[str, str], int] = {}
    for t in results.get("stats", {}).get("paired", []):
        if t["winner"]:
            wins[t["winner"], t["target"]] = wins.get((t["winner"], t["target"]), 0) + 1
    return {key for key, n in wins.items() if n == len(encoders) - 1}


def reference_columns(
    refs: Sequence[dict[str, Any]], tasks: Sequence[str], domains: dict[str, list[str]]
) -> list[dict[str, Any]]:
    """Published values for the displayed rows: tasks, domain averages (only where the run has the domain's full
    benchmark task set, as the paper's averages do) and the HARES score (only with all 12 tasks)."""
    from hares.tasks import get_task

    benchmark = _benchmark_tasks()
    full = {d: sorted(t for t in benchmark if get_task(t).domain == d) for d in DOMAINS}
    cols = []
    for ref in refs:
        col = {"name": ref["name"], "column": ref["column"], "tasks": {t: ref["tasks"].get(t) for t in tasks}}
        col["domains"] = {
            d: (ref["domains"] or {}).get(d) if sorted(ts) == full.get(d) else None for d, ts in domains.items()
        }
        col["hares"] = ref["hares"] if sorted(tasks) == sorted(benchmark) else None
        cols.append(col)
    return cols


def render_markdown(results: dict[str, Any]) -> str:
    """Tasks grouped by domain with domain averages and the HARES score, one column per encoder, then the
    published reference columns; intervals, significant wins (bold) and the paired tests where computed."""
    encoders, domains, rows = _layout(results)
    benchmark = _benchmark_tasks()
    stats = results.get("stats")
    refs = results.get("references", [])
    wins = _winners(results, encoders)

    def cell(e: str, t: str) -> str:
        r = rows.get((e, t))
        if r is None:
            return "-"
        if r.get("ci_low") is None:
            return f"{r['score']:.1f} ± {r['std']:.1f}" if r.get("std") else f"{r['score']:.1f}"
        text = _fmt(r["score"], (r["ci_low"], r["ci_high"]))
        return f"**{text}**" if (e, t) in wins else text

    headers = encoders + [f"{c['column']} †" for c in refs]
    lines = ["# HARES evaluation", "", "| Tasks | " + " | ".join(headers) + " |", "|---" * (len(headers) + 1) + "|"]
    scores = {e: {t: rows[e, t]["score"] for (e2, t) in rows if e2 == e} for e in encoders}
    task_domain = {t: d for d, ts in domains.items() for t in ts}
    averages = {e: domain_averages(scores[e], {t: task_domain[t] for t in scores[e]}) for e in encoders}
    agg_ci = {e: results.get("aggregates", {}).get(e, {}).get("ci", {}) for e in encoders}
    small = {r["task"] for r in results["results"] if r.get("ci_note")}
    for domain, tasks in domains.items():
        lines.append(f"| *{domain.capitalize()}* |" + " |" * len(headers))
        for t in tasks:
            metric = next(rows[e, t]["metric"] for e in encoders if (e, t) in rows)
            name = f"{DISPLAY.get(t, t)} ({metric}){' ⚠' if t in small else ''}"
            published = [_fmt(c["tasks"].get(t)) for c in refs]
            lines.append(f"| {name} | " + " | ".join([cell(e, t) for e in encoders] + published) + " |")
        avg = []
        for e in encoders:
            text = _fmt(averages[e].get(domain), agg_ci[e].get("domains", {}).get(domain))
            avg.append(f"**{text}**" if (e, f"avg:{domain}") in wins else text)
        avg += [_fmt(c["domains"].get(domain)) for c in refs]
        lines.append("| Avg. | " + " | ".join(avg) + " |")
    all_tasks = [t for ts in domains.values() for t in ts]
    hares = [hares_score(scores[e], benchmark) for e in encoders]
    if all(h is not None for h in hares):
        cells = [_fmt(h, agg_ci[e].get("hares")) for e, h in zip(encoders, hares)]
        cells = [f"**{c}**" if (e, "hares") in wins else c for e, c in zip(encoders, cells)]
        lines.append("| **HARES** | " + " | ".join(cells + [_fmt(c["hares"]) for c in refs]) + " |")
    else:
        means = [sum(scores[e].values()) / len(scores[e]) if scores[e] else None for e in encoders]
        cells = [_fmt(m, agg_ci[e].get("mean")) for e, m in zip(encoders, means)]
        cells = [f"**{c}**" if (e, "mean") in wins else c for e, c in zip(encoders, cells)]
        lines.append(f"| Mean ({len(all_tasks)} tasks; HARES needs all 12) | "
                     + " | ".join(cells + ["-" for _ in refs]) + " |")  # fmt: skip
    if stats:
        conf = round(100 * stats["confidence"])
        lines += ["", f"Scores in % (accuracy, or mAP where marked): mean over probe seeds [{conf}% interval: "
                  f"bootstrap over test clips and probe seeds, {stats['resamples']} resamples, seed {stats['seed']}]. "
                  f"**Bold**: better than every other encoder, significant at {stats['alpha']:g} after "
                  f"{stats['correction']} (paired tests below)."]  # fmt: skip
        lines += [f"- ⚠ {n}" for n in stats.get("notes", [])]
    else:
        lines += ["", "Scores in %, mean ± std over probe seeds (accuracy, or mAP where marked)."]
    if refs:
        lines += ["", "† Published numbers (no intervals), measured by the paper on its own data, splits and "
                  "pre-training; they are references, not paired comparisons:"]  # fmt: skip
        lines += [
            f"- {c['column']} = `{c['name']}`: {c['objective']}, trained on {c['training_data']}"
            + (f"; {c['note']}" if c.get("note") else "")
            for c in refs
        ]
    mismatch = results.get("merge", {}).get("protocol_mismatch")
    if mismatch:
        lines += [
            "",
            "**Protocol mismatch (merged with --allow-protocol-mismatch)**: the runs differ in "
            + "; ".join(mismatch)
            + ". Scores from different protocols are not strictly comparable.",
        ]
    lines += _markdown_paired(results)
    lines += _markdown_details(results)
    if has_layers(results):
        lines += render_layers_markdown(results)
    return "\n".join(lines) + "\n"


def _markdown_paired(results: dict[str, Any]) -> list[str]:
    paired = results.get("stats", {}).get("paired", [])
    if not paired:
        return []
    stats = results["stats"]
    lines = ["", "## Paired comparisons", "",
             f"Difference a − b in points on the same test clips, its {round(100 * stats['confidence'])}% interval, "
             f"the two-sided p-value and the Holm-adjusted p ({stats['correction']}); significant at "
             f"{stats['alpha']:g} after adjustment. Figure: `paired.png`; all tests: `paired.csv`.", ""]  # fmt: skip
    for (a, b), tests in itertools.groupby(paired, key=lambda t: (t["a"], t["b"])):
        lines += [f"### {a} vs {b}", "", "| | a − b | interval | p | p (Holm) | significant |", "|---" * 6 + "|"]
        for t in tests:
            mark = f"yes: {t['winner']}" if t["significant"] else "no"
            ci = f"[{t['ci_low']:+.1f}, {t['ci_high']:+.1f}]"
            lines.append(f"| {_target_name(t['target'])} | {t['diff']:+.1f} | {ci} | {t['p']:.2g} | {t['p_holm']:.2g} "
                         f"| {mark} |")  # fmt: skip
        lines.append("")
    return lines[:-1]


def _target_name(target: str) -> str:
    if target.startswith("avg:"):
        return f"Avg. {target[4:]}"
    return {"hares": "HARES", "mean": "Mean over tasks"}.get(target, DISPLAY.get(target, target))


def data_notes(results: dict[str, Any]) -> list[str]:
    """Report lines for what the dataset adapters found (`tasks[name]["manifest_report"]`): groups a release itself
    puts in two splits (followed as published, docs/DATASETS.md) and listed clips whose audio is missing."""
    lines = []
    for name, info in sorted(results.get("tasks", {}).items()):
        report = info.get("manifest_report") or {}
        straddling = report.get("straddling") or {}
        if straddling:
            shown = ", ".join(f"`{g}` ({'/'.join(s)})" for g, s in list(straddling.items())[:4])
            more = f" and {len(straddling) - 4} more" if len(straddling) > 4 else ""
            lines.append(f"- {name}: {len(straddling)} recording/speaker group(s) sit in two splits as the release "
                         f"defines them, followed as published: {shown}{more}")  # fmt: skip
        missing = report.get("missing") or {}
        missing = sum(missing.values()) if isinstance(missing, dict) else len(missing)  # per file, or the clips
        if missing:
            lines.append(f"- {name}: {missing:,} listed clip(s) have no audio file and were left out")
    return ["", "## Data notes", "", *lines] if lines else []


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
    lines += data_notes(results)
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
        version = results.get("protocol_version", 1)
        if probe.get("linear_solver", "adam") == "lbfgs":
            lines.append(f"- linear probe (protocol v{version}): full-batch L-BFGS over L2 {list(probe['l2_grid'])}, "
                         f"chosen on validation")  # fmt: skip
        adam = "MLP probe" if probe.get("linear_solver", "adam") == "lbfgs" else f"probe (protocol v{version})"
        lines.append(f"- {adam}: Adam, lr {list(probe['lrs'])} x weight decay {list(probe['weight_decays'])}, batch "
                     f"{probe['batch_size']}, <= {probe['max_epochs']} epochs, patience {probe['patience']}, "
                     f"weights averaged (decay {probe.get('average_decay', 0.0)}), seeds {list(probe['seeds'])}; "
                     f"full record in results.json")  # fmt: skip
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
        if all(rows[e, t].get("ci_low") is not None for t in tasks if (e, t) in rows):  # interval, else seed std
            lo = [rows[e, t]["score"] - rows[e, t]["ci_low"] if (e, t) in rows else 0.0 for t in tasks]
            hi = [rows[e, t]["ci_high"] - rows[e, t]["score"] if (e, t) in rows else 0.0 for t in tasks]
            errs = [[max(0.0, v) for v in lo], [max(0.0, v) for v in hi]]
        else:
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


def plot_paired(results: dict[str, Any], path: str | os.PathLike) -> None:
    """Forest plot: per pair of encoders, the difference on every task and aggregate with its interval (filled
    marker: significant after the Holm correction)."""
    from matplotlib.figure import Figure

    paired = results.get("stats", {}).get("paired", [])
    pairs = list(dict.fromkeys((t["a"], t["b"]) for t in paired))
    if not pairs:
        return
    _, domains, _ = _layout(results)
    order = {t: i for i, t in enumerate([t for ts in domains.values() for t in ts])}
    targets = sorted(dict.fromkeys(t["target"] for t in paired), key=lambda t: (t not in order, order.get(t, 0)))
    fig = Figure(figsize=(4.2 * min(len(pairs), 4), 0.9 + 0.32 * len(targets) * -(-len(pairs) // 4)))
    axes = fig.subplots(-(-len(pairs) // 4), min(len(pairs), 4), squeeze=False, sharey=True).ravel()
    ys = {t: -i for i, t in enumerate(targets)}
    for ax, (a, b) in zip(axes, pairs):
        for t in paired:
            if (t["a"], t["b"]) != (a, b):
                continue
            y = ys[t["target"]]
            color = "C0" if t["diff"] >= 0 else "C3"
            ax.plot([t["ci_low"], t["ci_high"]], [y, y], color=color, lw=1.5)
            ax.plot([t["diff"]], [y], "o", color=color, mfc=color if t["significant"] else "white", ms=5)
        ax.axvline(0, color="grey", lw=0.8)
        ax.set_title(f"{a} − {b}", fontsize=9)
        ax.set_xlabel("difference (points)")
    for ax in axes[len(pairs) :]:
        ax.set_visible(False)
    axes[0].set_yticks(list(ys.values()))
    axes[0].set_yticklabels([_target_name(t) for t in targets], fontsize=8)
    stats = results["stats"]
    fig.suptitle(f"paired differences, {round(100 * stats['confidence'])}% intervals; filled: significant at "
                 f"{stats['alpha']:g} after Holm ({len(paired)} tests)", fontsize=9, y=1.0)  # fmt: skip
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")


def write_report(results: dict[str, Any], out: str | os.PathLike, compare: Sequence[str] = ()) -> None:
    """Write report.csv, report.md, report.png, paired.csv/.png (with >= 2 encoders) and results.json into `out`,
    each atomically; `compare` adds published reference columns (`paper:ROW`, recorded in results.json)."""
    from hares.evaluate.references import get_reference

    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    if compare:
        _, domains, _ = _layout(results)
        tasks = [t for ts in domains.values() for t in ts]
        refs = [get_reference(name) for name in compare]
        results["references"] = [{**col, "objective": ref["objective"], "training_data": ref["training_data"],
                                   "note": ref.get("note"), "table": ref["table"], "source": ref["source"]}
                                  for col, ref in zip(reference_columns(refs, tasks, domains), refs)]  # fmt: skip
    write_text(out / "report.csv", render_csv(results))
    write_text(out / "report.md", render_markdown(results))
    plot(results, out / "report.png")
    if results.get("stats", {}).get("paired"):
        write_text(out / "paired.csv", render_paired_csv(results))
        plot_paired(results, out / "paired.png")
    if has_layers(results):
        plot_layers(results, out / "report_layers.png")
    write_json(out / "results.json", results)
