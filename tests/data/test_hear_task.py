"""HEAR task folders (`--tasks hear:DIR`) on fixtures in the official hear-preprocess layout."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from hares.evaluate import run_eval
from hares.tasks import get_task

FREQS = {"low": 300.0, "mid": 1100.0, "high": 2900.0}


def _tone(path: Path, freqs: list[float], sr: int, seed: int, seconds: float = 0.5) -> None:
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * sr)) / sr
    wav = sum(0.2 * np.sin(2 * np.pi * f * (1 + 0.02 * rng.standard_normal()) * t) for f in freqs)
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), (wav + 0.02 * rng.standard_normal(t.shape)).astype(np.float32), sr)


def hear_task(root: Path, *, kfold: bool = False, multilabel: bool = False, event: bool = False, sr: int = 16000,
              per_split: int = 6) -> Path:  # fmt: skip
    """A task folder as hear-preprocess's FinalizeCorpus writes it (metadata, vocabulary, split JSONs, <sr>/)."""
    name = "tones_multi" if multilabel else "tones"
    folder = root / f"{name}-v1.0.0-full"
    splits = [f"fold{i:02d}" for i in range(5)] if kfold else ["train", "valid", "test"]
    meta = {
        "task_name": name,
        "version": "v1.0.0",
        "embedding_type": "event" if event else "scene",
        "prediction_type": "multilabel" if multilabel else "multiclass",
        "split_mode": "new_split_kfold" if kfold else "trainvaltest",
        "sample_duration": 0.5,
        "evaluation": ["mAP", "d_prime", "aucroc"] if multilabel else ["top1_acc"],
        "download_urls": [],
        "default_mode": "full",
        "mode": "full",
        **({"nfolds": 5, "splits": splits} if kfold else {}),
    }
    folder.mkdir(parents=True)
    (folder / "task_metadata.json").write_text(json.dumps(meta, indent=True))
    with open(folder / "labelvocabulary.csv", "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["idx", "label"])
        for i, label in enumerate(sorted(FREQS)):
            w.writerow([i, label])
    rng = np.random.default_rng(0)
    k = 0
    for split in splits:
        labels = {}
        n = per_split if split in ("train",) or kfold else per_split // 2
        for label in FREQS:
            for i in range(n):
                labs = [label] if not multilabel else sorted({label, str(rng.choice(list(FREQS)))})
                slug = f"{label}_{split}_{i}.wav"
                _tone(folder / str(sr) / split / slug, [FREQS[x] for x in labs], sr, seed=k)
                labels[slug] = labs if not event else [{"label": label, "start": 0.0, "end": 500.0}]
                k += 1
        (folder / f"{split}.json").write_text(json.dumps(labels, indent=True))
    return folder


def test_trainvaltest_multiclass_task_runs_the_hares_protocol(tmp_path):
    folder = hear_task(tmp_path)
    task = get_task(f"hear:{folder}")
    assert task.name == "hear:tones" and task.metric == "accuracy" and not task.multilabel
    assert task.label_set == ("high", "low", "mid") and task.locate(None) == folder
    clips = task.build_manifest(None)
    assert {c.split for c in clips} == {"train", "valid", "test"} and len(clips) == 3 * (6 + 3 + 3)
    assert all(Path(c.path).is_file() and "/16000/" in c.path for c in clips)
    results = run_eval(["logmel"], [f"hear:{folder}"], cache_dir=tmp_path / "cache", max_epochs=40, seeds=(0,),
                       num_workers=0, progress=False)  # fmt: skip
    r = results["results"][0]
    assert r["task"] == "hear:tones" and r["metric"] == "accuracy" and r["score"] > 80
    assert results["tasks"]["hear:tones"]["clips_per_split"] == {"test": 9, "train": 18, "valid": 9}


def test_kfold_multilabel_task_at_48k_uses_heareval_folds_and_map(tmp_path):
    folder = hear_task(tmp_path, kfold=True, multilabel=True, sr=48000, per_split=2)
    task = get_task(f"hear:{folder}")
    assert task.metric == "mAP" and task.multilabel and task.folds == tuple(f"fold{i:02d}" for i in range(5))
    clips = task.build_manifest(None)
    assert all("/48000/" in c.path for c in clips)  # no 16000 folder: the highest rate, resampled on decode
    splits = task.splits(clips)
    assert [name for name, _ in splits] == [f"fold{i:02d}" for i in range(5)]
    for i, (name, sets) in enumerate(splits):  # heareval: test = fold i, valid = fold i+1, train = the rest
        assert {c.split for c in sets["valid"]} == {f"fold{(i + 1) % 5:02d}"}
        assert {c.split for c in sets["train"]} == {f"fold{j:02d}" for j in range(5)} - {name, f"fold{(i + 1) % 5:02d}"}
    results = run_eval(["logmel"], [f"hear:{folder}"], cache_dir=tmp_path / "cache", max_epochs=5, seeds=(0,),
                       num_workers=0, progress=False)  # fmt: skip
    r = results["results"][0]
    assert r["metric"] == "mAP" and len(r["folds"]) == 5 and 0 < r["score"] <= 100


def test_event_tasks_and_broken_folders_fail_clearly(tmp_path):
    folder = hear_task(tmp_path, event=True, per_split=2)
    with pytest.raises(ValueError, match="event \\(timestamp\\) task.*not supported yet"):
        get_task(f"hear:{folder}")
    with pytest.raises(FileNotFoundError, match="HEAR task folder not found"):
        get_task(f"hear:{tmp_path / 'nothing'}")
    good = hear_task(tmp_path / "g", per_split=2)
    (good / "valid.json").unlink()
    with pytest.raises(FileNotFoundError, match="valid.json: not found"):
        get_task(f"hear:{good}").build_manifest(None)
    (good / "task_metadata.json").write_text("{")
    with pytest.raises(ValueError, match="task_metadata.json: not valid JSON"):
        get_task(f"hear:{good}")
