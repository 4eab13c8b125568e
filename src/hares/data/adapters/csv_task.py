"""Custom tasks from a CSV manifest: how users evaluate on their own data (`--task csv:PATH`).

Columns (header required, comma-separated):
- `path`: audio file, absolute or relative to the CSV's folder;
- `label` (one class) or `labels` (classes separated by `;`, multi-label; may be empty);
- `split` (optional): train / valid / test (`validation`, `val`, `dev` accepted), or `fold1`..`foldK` for
  K-fold cross-validation (test = fold i, valid = fold i+1, train = the rest; K >= 3);
- `group` (optional): clips sharing a group (speaker, recording) always land in the same split;
- `domain` (optional): one value for the whole file (else "custom" or the `domain` argument).

Without `split`: a deterministic split by group (or path) hash, 70/10/20 of the groups (seeded sha256, the same in
every run). With `split` but no valid rows: 1/8 of the train groups (by hash) become valid, so the probe's choices
never look at test. The metric is accuracy for `label`, mAP for `labels`.
"""

from __future__ import annotations

import csv
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from hares.data.adapters._util import Manifest, count_splits, read_csv, split_by_hash
from hares.data.manifest import Clip, duplicate_lines, not_utf8, resolve

SPLIT_ALIASES = {"train": "train", "valid": "valid", "validation": "valid", "val": "valid", "dev": "valid",
                 "test": "test"}  # fmt: skip
DEFAULT_FRACTIONS = (("train", 0.7), ("valid", 0.1), ("test", 0.2))
FOLD_RE = re.compile(r"^fold\d+$")
SEED = "hares-csv-v1"


def _header(path: Path) -> list[str]:
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            return [h.strip() for h in next(csv.reader(f), [])]
    except UnicodeDecodeError as e:
        raise not_utf8(path, e) from None


def _fold_key(name: str) -> int:
    return int(name[4:])


def read_clip_csv(path: str | os.PathLike, labels_required: bool = True) -> tuple[list[Clip], list[str]]:
    """The rows of a clip CSV as `Clip`s, and its header: the one CSV reader of evaluation and pre-training.

    `path` column required (absolute or relative to the CSV's folder); `label` (one class) or `labels` (classes
    joined by `;`); optional `split` (train/valid/test or foldN; "" when absent), `group`, `start`/`end` (seconds).
    A UTF-8 byte-order mark is ignored. With `labels_required` (evaluation) exactly one label column is needed and a
    single-label row may not be empty; pre-training CSVs may have no label column at all.
    """
    csv_path = Path(path)
    header = _header(csv_path)
    n_label_cols = ("label" in header) + ("labels" in header)
    if "path" not in header or n_label_cols > 1 or (labels_required and n_label_cols != 1):
        need = "exactly one of" if labels_required else "at most one of"
        raise ValueError(f"{csv_path}: needs a `path` column and {need} `label` / `labels`; header {header}")
    multilabel = "labels" in header
    label_col = "labels" if multilabel else "label" if "label" in header else None
    rows = read_csv(csv_path, ["path", *([label_col] if label_col else [])])
    if not rows:
        raise ValueError(f"{csv_path}: no rows")
    base = csv_path.parent
    has_split, has_group = "split" in header, "group" in header
    clips = []
    for i, r in enumerate(rows, 2):
        p = (r.get("path") or "").strip()
        if not p:
            raise ValueError(f"{csv_path}:{i}: empty path")
        if multilabel:
            labels = tuple(x.strip() for x in (r.get("labels") or "").split(";") if x.strip())
        elif label_col:
            lab = (r.get("label") or "").strip()
            if not lab and labels_required:
                raise ValueError(f"{csv_path}:{i}: empty label")
            labels = (lab,) if lab else ()
        else:
            labels = ()
        split = ""
        if has_split:
            raw = (r.get("split") or "").strip().lower()
            split = SPLIT_ALIASES.get(raw, raw if FOLD_RE.match(raw) else "")
            if not split and (raw or labels_required):
                raise ValueError(f"{csv_path}:{i}: split {raw!r} is not train/valid/test or foldN")
        group = (r.get("group") or "").strip() if has_group else ""
        try:
            seg = float((r.get("start") or "0").strip() or 0), float((r.get("end") or "0").strip() or 0)
        except ValueError as e:
            raise ValueError(f"{csv_path}:{i}: start/end must be seconds ({e})") from e
        if seg[0] < 0 or (seg[1] and seg[1] <= seg[0]):
            raise ValueError(f"{csv_path}:{i}: segment {seg[0]}-{seg[1]} s is empty or negative")
        clips.append(Clip(resolve(p, base), labels, split, group=group, start=seg[0], end=seg[1]))
    dups = duplicate_lines((c.path, c.split, c.start, c.end) for c in clips)  # in two splits: check_disjoint names it
    if dups:  # a clip listed twice would be counted twice
        shown = "; ".join(f"lines {a} and {b}: {Path(k[0]).name}" for a, b, k in dups[:5])
        more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
        raise ValueError(f"{csv_path}: {len(dups)} duplicate row(s) name a file already listed ({shown}{more})")
    return clips, header


def build(root: Path, path: str) -> Manifest:
    """Clips of the CSV at `path` (`root` is its folder)."""
    csv_path = Path(path)
    clips, header = read_clip_csv(csv_path)
    has_split, has_group = "split" in header, "group" in header
    report: dict[str, Any] = {"source": str(csv_path)}
    if not has_split:
        keys = {c.path: c.group or c.path for c in clips}
        assign = split_by_hash(keys.values(), DEFAULT_FRACTIONS, SEED)
        clips = [replace(c, split=assign[keys[c.path]]) for c in clips]
        report["split"] = "hash 70/10/20 by group" if has_group else "hash 70/10/20 by path"
    else:
        kinds = {c.split for c in clips}
        folds = {s for s in kinds if FOLD_RE.match(s)}
        if folds and folds != kinds:
            raise ValueError(f"{csv_path}: mixes fold splits with train/valid/test: {sorted(kinds)}")
        if folds and len(folds) < 3:
            raise ValueError(f"{csv_path}: cross-validation needs at least 3 folds, got {sorted(folds)}")
        if not folds and "valid" not in kinds:
            train_groups = [c.group or c.path for c in clips if c.split == "train"]
            assign = split_by_hash(train_groups, (("train", 7 / 8), ("valid", 1 / 8)), SEED)
            clips = [replace(c, split=assign[c.group or c.path]) if c.split == "train" else c
                     for c in clips]  # fmt: skip
            report["split"] = "given; valid = 1/8 of the train groups by hash"
        else:
            report["split"] = "given"
    report["clips"] = count_splits(clips)
    return Manifest(clips, report)


def describe(path: str | os.PathLike) -> dict[str, Any]:
    """What a task built on the CSV at `path` is: {"path", "multilabel", "folds", "domain"} (from header and rows).

    Raises FileNotFoundError naming the file when it does not exist. `hares.tasks.get_task("csv:PATH")` turns this
    into a TaskSpec (the adapter never imports the task registry)."""
    csv_path = Path(path).expanduser().resolve()
    if not csv_path.is_file():
        raise FileNotFoundError(f"custom task CSV not found: {csv_path} (columns path,label[,split,group])")
    header = _header(csv_path)
    folds: tuple[str, ...] = ()
    file_domain = ""
    if "split" in header or "domain" in header:
        rows = read_csv(csv_path, [])
        splits = {(r.get("split") or "").strip().lower() for r in rows}
        if splits and all(FOLD_RE.match(s) for s in splits):
            folds = tuple(sorted(splits, key=_fold_key))
        domains = {(r.get("domain") or "").strip() for r in rows} - {""}
        if len(domains) > 1:
            raise ValueError(f"{csv_path}: the domain column must hold one value, got {sorted(domains)}")
        file_domain = next(iter(domains), "")
    return {"path": str(csv_path), "multilabel": "labels" in header, "folds": folds, "domain": file_domain}
