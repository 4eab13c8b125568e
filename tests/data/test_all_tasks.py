"""Invariants over all 12 tasks on their layout fixtures: disjoint splits, class lists, and no choice that reads
the test split (shrinking or relabelling the test split leaves train, valid and the class list unchanged)."""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from pathlib import Path

import fixtures_layouts as F
import pytest

from hares.data.manifest import Clip, check_disjoint
from hares.tasks import get_task, list_tasks

FIXTURES = {
    "audioset": F.audioset,
    "birdsong": F.birdsong,
    "tut18": F.tut18,
    "esc50": F.esc50,
    "speech_commands_v1": F.speech_commands,
    "speech_commands_v2": F.speech_commands,
    "fluent_speech_commands": F.fluent_speech_commands,
    "voxforge": F.voxforge,
    "voxceleb1": F.voxceleb1,
    "nsynth_instrument": F.nsynth,
    "nsynth_pitch": F.nsynth,
    "magnatagatune": F.magnatagatune,
}


def _keep_lines(path: Path, keep) -> None:
    lines = path.read_text().splitlines()
    path.write_text("\n".join(line for i, line in enumerate(lines) if keep(i, line)) + "\n")


def _shrink_nsynth_test(root: Path) -> None:
    f = root / "nsynth" / "nsynth-test" / "examples.json"
    notes = json.loads(f.read_text())
    f.write_text(json.dumps({k: v for i, (k, v) in enumerate(sorted(notes.items())) if i % 2}))


# Remove part of the test split (in the dataset's own metadata) without touching train / valid.
SHRINK_TEST = {
    "audioset": lambda r: _keep_lines(r / "AudioSet" / "eval_segments.csv", lambda i, _: i < 6),
    "tut18": lambda r: _keep_lines(
        r / "TUT-urban-acoustic-scenes-2018-development/evaluation_setup/fold1_evaluate.txt", lambda i, _: i % 2
    ),
    "speech_commands_v1": lambda r: shutil.rmtree(r / "speech_commands_test_set_v0.02" / "yes"),
    "fluent_speech_commands": lambda r: _keep_lines(
        r / "fluent_speech_commands_dataset/data/test_data.csv", lambda i, _: i < 4
    ),
    "voxceleb1": lambda r: _keep_lines(r / "VoxCeleb1" / "iden_split.txt", lambda i, line: line[0] != "3" or i % 2),
    "nsynth_instrument": _shrink_nsynth_test,
    "nsynth_pitch": _shrink_nsynth_test,
    "magnatagatune": lambda r: _keep_lines(
        r / "MagnaTagATune" / "annotations_final.csv", lambda i, line: i == 0 or line.split("\t")[-1][1] not in "de"
    ),
}


def test_every_task_has_a_fixture():
    assert list(FIXTURES) == list_tasks()


def _build(name: str, root: Path):
    FIXTURES[name](root)
    return get_task(name).build_manifest(root)


@pytest.mark.parametrize("name", list_tasks())
def test_splits_disjoint_and_classes(name, tmp_path):
    task = get_task(name)
    clips = _build(name, tmp_path)
    check_disjoint(clips)
    classes = task.classes(clips)
    if task.label_set:
        assert len(classes) == task.num_classes
    for c in clips:
        assert Path(c.path).is_absolute() and str(tmp_path) in c.path
        assert set(c.labels) <= set(classes) or (task.multilabel and c.split == "test")
        assert task.multilabel or len(c.labels) == 1
    for _, sets in task.splits(clips):
        assert all(sets[s] for s in ("train", "valid", "test")), {s: len(v) for s, v in sets.items()}
        keys = {s: {(c.path, c.start, c.end) for c in v} for s, v in sets.items()}
        groups = {s: {c.group for c in v} - {""} for s, v in sets.items()}
        for a, b in (("train", "valid"), ("train", "test"), ("valid", "test")):
            assert not keys[a] & keys[b] and not groups[a] & groups[b]


@pytest.mark.parametrize("name", list_tasks())
def test_classes_and_splits_ignore_test_content(name, tmp_path):
    """Dropping or relabelling test clips changes neither the class list nor train / valid."""
    task = get_task(name)
    clips = _build(name, tmp_path)
    classes = task.classes(clips)
    for fold, sets in task.splits(clips):
        test = {id(c) for c in sets["test"]}
        kept = [c for c in clips if id(c) not in test]
        assert task.classes(kept) == classes
        relabelled = kept + [replace(c, labels=("__test_only__",)) for c in sets["test"]]
        if task.multilabel:
            assert task.classes(relabelled) == classes
        elif not fold:  # single-label: an unseen test label is an error, never a new class
            with pytest.raises(ValueError, match="outside the class list"):
                task.classes(relabelled)
        if not fold:
            ((_, again),) = task.splits(kept)
            assert again["train"] == sets["train"] and again["valid"] == sets["valid"] and not again["test"]


@pytest.mark.parametrize("name", sorted(SHRINK_TEST))
def test_adapter_train_valid_do_not_depend_on_test_metadata(name, tmp_path):
    before = _build(name, tmp_path)
    SHRINK_TEST[name](tmp_path)
    after = get_task(name).build_manifest(tmp_path)
    for split in ("train", "valid"):
        assert {c for c in before if c.split == split} == {c for c in after if c.split == split}, split
    assert 0 < sum(c.split == "test" for c in after) < sum(c.split == "test" for c in before)
    assert get_task(name).classes(after) == get_task(name).classes(before)


def test_csv_tasks_classes_never_read_test(tmp_path):
    rows = ["path,label,split"] + [f"x{i}.wav,{i % 4},{['train', 'valid', 'test'][i % 3]}" for i in range(24)]
    (tmp_path / "t.csv").write_text("\n".join(rows) + "\n")
    task = get_task(f"csv:{tmp_path / 't.csv'}")
    clips = task.build_manifest(None)
    no_test = [c for c in clips if c.split != "test"]
    assert task.classes(clips) == task.classes(no_test) == ["0", "1", "2", "3"]
    with pytest.raises(ValueError, match="outside the class list"):
        task.classes(clips + [Clip("/y.wav", ("9",), "test")])


def test_manifests_identical_across_python_runs(tmp_path):
    """Same fixture, fresh interpreter with another PYTHONHASHSEED: identical manifests (hashlib, sorted order)."""
    import os
    import subprocess
    import sys

    from hares.data.manifest import manifest_hash

    for name in FIXTURES:
        FIXTURES[name](tmp_path / name)
    here = {n: manifest_hash(get_task(n).build_manifest(tmp_path / n)) for n in FIXTURES}
    code = (
        "import json, sys; from hares.tasks import get_task, list_tasks; from hares.data.manifest import manifest_hash;"
        "print(json.dumps({n: manifest_hash(get_task(n).build_manifest(sys.argv[1] + '/' + n)) for n in list_tasks()}))"
    )
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code, str(tmp_path)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert json.loads(out.stdout) == here
