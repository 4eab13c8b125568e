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


def build(root: Path, path: str) -> Manifest:
    """Clips of the CSV at `path` (`root` is its folder)."""
    csv_path = Path(path)
    header = _header(csv_path)
    if "path" not in header or ("label" in header) == ("labels" in header):
        raise ValueError(f"{csv_path}: needs a `path` column and exactly one of `label` / `labels`; header {header}")
    multilabel = "labels" in header
    rows = read_csv(csv_path, ["path", "labels" if multilabel else "label"])
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
        else:
            lab = (r.get("label") or "").strip()
            if not lab:
                raise ValueError(f"{csv_path}:{i}: empty label")
            labels = (lab,)
        split = ""
        if has_split:
            raw = (r.get("split") or "").strip().lower()
            split = SPLIT_ALIASES.get(raw, raw if FOLD_RE.match(raw) else "")
            if not split:
                raise ValueError(f"{csv_path}:{i}: split {raw!r} is not train/valid/test or foldN")
        group = (r.get("group") or "").strip() if has_group else ""
        clips.append(Clip(resolve(p, base), labels, split, group=group))
    dups = duplicate_lines((c.path, c.split) for c in clips)  # in two splits: check_disjoint names the leak
    if dups:  # a clip listed twice would be counted twice
        shown = "; ".join(f"lines {a} and {b}: {Path(k[0]).name}" for a, b, k in dups[:5])
        more = f" and {len(dups) - 5} more" if len(dups) > 5 else ""
        raise ValueError(f"{csv_path}: {len(dups)} duplicate row(s) name a file already listed ({shown}{more})")
    report: dict[str, Any] = {"source": str(csv_path)}
    if not has_split:
        keys = {c.path: c.group or c.path for c in clips}
        assign = split_by_hash(keys.values(), DEFAULT_FRACTIONS, SEED)
        clips = [Clip(c.path, c.labels, assign[keys[c.path]], c.group) for c in clips]
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
            clips = [Clip(c.path, c.labels, assign[c.group or c.path], c.group) if c.split == "train" else c
                     for c in clips]  # fmt: skip
            report["split"] = "given; valid = 1/8 of the train groups by hash"
        else:
            report["split"] = "given"
    report["clips"] = count_splits(clips)
    return Manifest(clips, report)


def make_task(path: str | os.PathLike, domain: str | None = None, name: str | None = None) -> Any:
    """The TaskSpec of the CSV at `path` (metric, folds and domain read from its header and rows)."""
    from hares.tasks import TaskSpec

    csv_path = Path(path).expanduser().resolve()
    if not csv_path.is_file():
        raise FileNotFoundError(f"custom task CSV not found: {csv_path} (columns path,label[,split,group])")
    header = _header(csv_path)
    multilabel = "labels" in header
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
    return TaskSpec(
        name=name or f"csv:{csv_path.stem}",
        domain=domain or file_domain or "custom",
        metric="mAP" if multilabel else "accuracy",
        multilabel=multilabel,
        folders=(),
        url=str(csv_path),
        num_classes=0,
        folds=folds,
        description=f"custom task from {csv_path}",
        adapter="csv_task",
        options=(("path", str(csv_path)),),
    )
