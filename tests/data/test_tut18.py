"""TUT18 adapter: tab-separated meta.csv, evaluation_setup fold1 lists, valid carved from train by location."""

from __future__ import annotations

import pytest
from fixtures_layouts import tut18

from hares.data.adapters.tut18 import choose_valid
from hares.tasks import get_task


def test_tut18_splits_labels_and_locations(tmp_path):
    tut18(tmp_path)
    task = get_task("tut18")
    clips = task.build_manifest(tmp_path)
    assert clips.report["clips"] == {"train": 54, "valid": 9, "test": 27}
    assert task.classes(clips)[:3] == ["airport", "bus", "metro"] and len(task.classes(clips)) == 10
    assert all(c.path.split("/")[-1].startswith(c.label + "-") for c in clips)
    assert {c.group.split("-")[-1] for c in clips if c.split == "test"} == {"7", "8", "9"}
    for scene in ("airport", "bus", "park"):  # one location (3 of 21 train clips) per scene is valid
        valid = {c.group for c in clips if c.split == "valid" and c.label == scene}
        train = {c.group for c in clips if c.split == "train" and c.label == scene}
        assert len(valid) == 1 and len(train) == 6 and not valid & train


def test_tut18_valid_choice_is_seeded_and_reads_train_only():
    pairs = [(s, f"city-{loc}") for s in ("a", "b") for loc in range(20) for _ in range(loc % 3 + 1)]
    chosen = choose_valid(pairs)
    assert chosen == choose_valid(list(reversed(pairs)))
    for s in ("a", "b"):
        n_valid = sum(1 for p in pairs if p in chosen and p[0] == s)
        assert 0.1 * 40 <= n_valid < 0.1 * 40 + 3


def test_tut18_label_mismatch_is_reported(tmp_path):
    d = tut18(tmp_path)
    f = d / "evaluation_setup" / "fold1_train.txt"
    f.write_text(f.read_text().replace("\tairport", "\tbus", 1))
    with pytest.raises(ValueError, match="labelled 'bus' but 'airport' in meta.csv"):
        get_task("tut18").build_manifest(tmp_path)
    (d / "meta.csv").unlink()
    with pytest.raises(FileNotFoundError, match="meta.csv.*zenodo"):
        get_task("tut18").build_manifest(tmp_path)
