"""Merging evaluation runs into one report: `hares report RUN_DIR... --out DIR`.

Each run folder holds `results.json` and `predictions/*.npz` (the per-clip test outputs), so a merged report
recomputes aggregates, intervals and paired tests without re-running a probe. Runs must share every protocol value
(probe, clip policy, frontend, bad-audio tolerance) unless `allow_protocol_mismatch`, which is then recorded and
printed in the report; an encoder label may appear in only one run; a task present in several runs must have the
same test clips. Because bootstrap draws are keyed by task and encoder, not by position, merging two runs gives the
numbers a single run with both encoders gives (same cache, same seeds).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from hares.evaluate.stats import TaskPredictions, load_predictions

STAT_KEYS = ("ci_low", "ci_high", "num_test", "ci_note")  # recomputed for the merged report


def load_run(run_dir: str | os.PathLike) -> tuple[dict[str, Any], dict[tuple[str, str], TaskPredictions]]:
    """A run folder's results dict and its stored predictions, keyed (encoder, task)."""
    run_dir = Path(run_dir)
    path = run_dir / "results.json"
    if not path.is_file():
        raise FileNotFoundError(f"{run_dir}: no results.json (not a `hares eval` output folder)")
    try:
        results = json.loads(path.read_text())
    except json.JSONDecodeError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    predictions = {}
    for r in results.get("results", []):
        if not r.get("predictions"):
            raise ValueError(f"{path}: {r['encoder']} / {r['task']} has no stored test predictions (a run made before "
                             "hares kept them); re-run `hares eval` (the embedding cache makes it cheap)")  # fmt: skip
        file = run_dir / r["predictions"]
        if not file.is_file():
            raise FileNotFoundError(f"{file}: missing (listed in {path})")
        predictions[r["encoder"], r["task"]] = load_predictions(file)
    return results, predictions


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)))
    return out


def protocol_differences(protocols: Sequence[dict[str, Any]], names: Sequence[str]) -> list[str]:
    """'key: value (run) vs value (run)' for every protocol value that is not the same in all runs."""
    flat = [_flatten(p) for p in protocols]
    keys = sorted(set().union(*flat))
    diffs = []
    for key in keys:
        values = [json.dumps(f.get(key), sort_keys=True) for f in flat]
        if len(set(values)) > 1:
            diffs.append(f"{key}: " + " vs ".join(f"{v} ({n})" for v, n in zip(values, names)))
    return diffs


def merge_runs(
    run_dirs: Sequence[str | os.PathLike], allow_protocol_mismatch: bool = False
) -> tuple[dict[str, Any], dict[tuple[str, str], TaskPredictions]]:
    """One results dict (rows in run order, aggregates and stats still to compute) and all predictions."""
    if not run_dirs:
        raise ValueError("no run folders given")
    runs = [(str(d), *load_run(d)) for d in run_dirs]
    names = [d for d, _, _ in runs]
    if len(set(map(os.path.realpath, names))) != len(names):
        raise ValueError(f"a run folder is listed twice: {names}")
    diffs = protocol_differences([r.get("protocol", {}) for _, r, _ in runs], names)
    if diffs and not allow_protocol_mismatch:
        raise ValueError("the runs were made with different protocol values, so their scores are not comparable:\n  "
                         + "\n  ".join(diffs) + "\n(pass --allow-protocol-mismatch to merge anyway; the report "
                         "will say so)")  # fmt: skip
    owner: dict[str, str] = {}
    for name, results, _ in runs:
        for label in dict.fromkeys(r["encoder"] for r in results["results"]):
            if label in owner:
                raise ValueError(f"encoder label {label!r} is in both {owner[label]} and {name}; a merged report "
                                 "needs distinct labels (name encoders with LABEL=SPEC in `hares eval`)")  # fmt: skip
            owner[label] = name
    tasks: dict[str, Any] = {}
    task_run: dict[str, str] = {}
    for name, results, _ in runs:
        for task, info in results.get("tasks", {}).items():
            if task in tasks and info.get("manifest_hash") != tasks[task].get("manifest_hash"):
                # other data roots give other hashes; the clip ids (relative to the task folder) must still agree
                _check_same_clips(task, runs, task_run[task], name)
            tasks.setdefault(task, info)
            task_run.setdefault(task, name)
    first = runs[0][1]
    merged: dict[str, Any] = {
        k: v for k, v in first.items() if k not in ("results", "aggregates", "stats", "references")
    }
    merged["encoders"] = {k: v for _, r, _ in runs for k, v in r.get("encoders", {}).items()}
    merged["tasks"] = tasks
    merged["results"] = [
        {k: v for k, v in row.items() if k not in STAT_KEYS} for _, r, _ in runs for row in r["results"]
    ]
    merged["merge"] = {
        "runs": [
            {"dir": n, **{k: r.get(k) for k in ("git_sha", "git_dirty", "hares_version", "created_utc", "device")}}
            for n, r, _ in runs
        ],  # fmt: skip
        "merged_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "protocol_mismatch": diffs,
    }
    predictions = {key: p for _, _, preds in runs for key, p in preds.items()}
    merged["_sources"] = {(r["encoder"], r["task"]): Path(n) / r["predictions"] for n, res, _ in runs
                          for r in res["results"]}  # fmt: skip
    return merged, predictions


def _check_same_clips(task: str, runs, run_a: str, run_b: str) -> None:
    import numpy as np

    def ids(name):
        preds = next(p for n, _, ps in runs if n == name for (e, t), p in ps.items() if t == task)
        return [f.clip_ids for f in preds.folds]

    a, b = ids(run_a), ids(run_b)
    if len(a) != len(b) or any(not np.array_equal(x, y) for x, y in zip(a, b)):
        raise ValueError(f"task {task!r} has different test clips in {run_a} and {run_b}; encoders tested on "
                         "different clips cannot be compared in one report")  # fmt: skip


def write_merged(results: dict[str, Any], out: str | os.PathLike) -> None:
    """Copy (hard-link where possible) each row's predictions into OUT/predictions, so OUT is a run folder too."""
    out = Path(out)
    sources = results.pop("_sources")
    (out / "predictions").mkdir(parents=True, exist_ok=True)
    for r in results["results"]:
        src = sources[r["encoder"], r["task"]]
        dst = out / "predictions" / src.name
        if src.resolve() != dst.resolve():
            dst.unlink(missing_ok=True)
            try:
                os.link(src, dst)
            except OSError:
                shutil.copy2(src, dst)
        r["predictions"] = f"predictions/{src.name}"
