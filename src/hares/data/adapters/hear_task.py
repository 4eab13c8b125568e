"""HEAR 2021 task folders (`--tasks hear:DIR`), as written by hear-preprocess, run under the hares protocol.

Layout (hear-preprocess `hearpreprocess/pipeline.py`, `FinalizeCorpus`; read by heareval's
`heareval/predictions/task_predictions.py`):

    DIR/task_metadata.json      task_name, version, embedding_type (scene | event), prediction_type
                                (multiclass | multilabel), split_mode (trainvaltest | new_split_kfold |
                                presplit_kfold), splits (the fold names for k-fold modes), evaluation, ...
    DIR/labelvocabulary.csv     columns idx,label
    DIR/{split}.json            {"<file>.wav": ["label", ...]} per split: train/valid/test, or fold00, fold01, ...
    DIR/<rate>/{split}/<file>.wav  the audio at each rate (16000 preferred; else the highest rate present,
                                resampled to 16 kHz with soxr when decoded)

Scene tasks only: multiclass -> accuracy, multilabel -> mAP (the hares metrics; HEAR's primary metric is kept
in the task description). k-fold tasks follow heareval's rotation, which is also hares': folds sorted, test =
fold i, valid = fold i+1 (mod k), train = the rest. Event (timestamp) tasks are refused with a clear message.
"""

from __future__ import annotations

import csv
import json
import os
from pathlib import Path
from typing import Any

from hares.data.adapters._util import Manifest, count_splits
from hares.data.manifest import Clip

TRAINVALTEST = ("train", "valid", "test")


def read_metadata(root: Path) -> dict[str, Any]:
    path = root / "task_metadata.json"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found (a hear-preprocess task folder has task_metadata.json)")
    try:
        meta = json.loads(path.read_text())
    except ValueError as e:
        raise ValueError(f"{path}: not valid JSON ({e})") from e
    for key in ("task_name", "embedding_type", "prediction_type", "split_mode"):
        if key not in meta:
            raise ValueError(f"{path}: missing {key!r}")
    if meta["embedding_type"] != "scene":
        raise ValueError(
            f"{path}: {meta['task_name']} is an {meta['embedding_type']} (timestamp) task; hares runs HEAR scene "
            "tasks only, event tasks are not supported yet"
        )
    if meta["prediction_type"] not in ("multiclass", "multilabel"):
        raise ValueError(f"{path}: prediction_type {meta['prediction_type']!r} is not multiclass or multilabel")
    return meta


def split_names(meta: dict[str, Any], root: Path) -> list[str]:
    """train/valid/test, or the fold names (sorted, as heareval sorts them)."""
    mode = meta["split_mode"]
    if mode == "trainvaltest":
        return list(TRAINVALTEST)
    if mode in ("new_split_kfold", "presplit_kfold"):
        folds = meta.get("splits") or sorted(p.stem for p in root.glob("fold*.json"))
        if len(folds) < 3:
            raise ValueError(f"{root / 'task_metadata.json'}: k-fold task with {len(folds)} folds (needs >= 3)")
        return sorted(str(f) for f in folds)
    raise ValueError(f"{root / 'task_metadata.json'}: unknown split_mode {mode!r}")


def read_vocabulary(root: Path) -> tuple[str, ...]:
    """Labels in `idx` order."""
    path = root / "labelvocabulary.csv"
    if not path.is_file():
        raise FileNotFoundError(f"{path}: not found")
    with open(path, newline="") as f:
        rows = list(csv.DictReader(f))
    if not rows or not {"idx", "label"} <= set(rows[0]):
        raise ValueError(f"{path}: needs columns idx,label")
    try:
        rows.sort(key=lambda r: int(r["idx"]))
    except ValueError as e:
        raise ValueError(f"{path}: idx must be integers ({e})") from e
    return tuple(str(r["label"]) for r in rows)


def audio_folder(root: Path) -> Path:
    """`root/16000`, else the highest sample-rate folder present."""
    rates = sorted((int(p.name) for p in root.iterdir() if p.is_dir() and p.name.isdigit()), reverse=True)
    if not rates:
        raise FileNotFoundError(f"{root}: no audio folder (expected {root / '16000'}/<split>/*.wav)")
    return root / ("16000" if 16000 in rates else str(rates[0]))


def build(root: Path, path: str = "") -> Manifest:
    """Clips of the HEAR task folder `root` (`path` is the same folder, as given)."""
    root = Path(path or root)
    meta = read_metadata(root)
    audio = audio_folder(root)
    clips = []
    for split in split_names(meta, root):
        labels_path = root / f"{split}.json"
        if not labels_path.is_file():
            raise FileNotFoundError(f"{labels_path}: not found (split {split!r} of {meta['split_mode']})")
        try:
            labels = json.loads(labels_path.read_text())
        except ValueError as e:
            raise ValueError(f"{labels_path}: not valid JSON ({e})") from e
        for name, labs in sorted(labels.items()):
            if not isinstance(labs, list):
                raise ValueError(f"{labels_path}: {name}: labels must be a list, got {type(labs).__name__}")
            clips.append(Clip(str(audio / split / name), tuple(str(x) for x in labs), split))
    report = {"source": str(root), "audio": str(audio), "task_name": meta["task_name"], "clips": count_splits(clips)}
    return Manifest(clips, report)


def make_task(path: str | os.PathLike, domain: str | None = None, name: str | None = None) -> Any:
    """The TaskSpec of a hear-preprocess scene task folder."""
    from hares.tasks import TaskSpec

    root = Path(path).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"HEAR task folder not found: {root}")
    meta = read_metadata(root)
    multilabel = meta["prediction_type"] == "multilabel"
    names = split_names(meta, root)
    vocabulary = read_vocabulary(root)
    primary = (meta.get("evaluation") or ["?"])[0]
    return TaskSpec(
        name=name or f"hear:{meta['task_name']}",
        domain=domain or "hear",
        metric="mAP" if multilabel else "accuracy",
        multilabel=multilabel,
        folders=(),
        url=str(root),
        num_classes=len(vocabulary),
        folds=() if names == list(TRAINVALTEST) else tuple(names),
        description=f"HEAR task {meta['task_name']} {meta.get('version', '')} from {root} (HEAR's primary "
        f"metric: {primary})",
        adapter="hear_task",
        options=(("path", str(root)),),
        label_set=vocabulary,
    )
