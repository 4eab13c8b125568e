"""Birdsong adapter: the three DCASE 2018 BAD dev sets, seeded 80/10/10 split stratified by set and label."""

from __future__ import annotations

import subprocess
import sys
from collections import Counter

import pytest
from fixtures_layouts import birdsong

from hares.tasks import get_task


def test_birdsong_stratified_split_and_labels(tmp_path):
    birdsong(tmp_path)
    task = get_task("birdsong")
    clips = task.build_manifest(tmp_path)
    assert clips.report["listed"] == {"ff1010bird": 20, "warblrb10k_public": 20, "BirdVox-DCASE-20k": 20}
    assert task.classes(clips) == ["no_bird", "bird"]
    strata = Counter((c.group.split(":")[0], c.label, c.split) for c in clips)
    for ds in ("ff1010bird", "warblrb10k", "BirdVox-DCASE-20k"):
        for label in ("no_bird", "bird"):  # 10 clips per stratum -> 8 / 1 / 1
            assert [strata[ds, label, s] for s in ("train", "valid", "test")] == [8, 1, 1]
    assert any(c.path.endswith("ff1010bird/wav/1000.wav") for c in clips)
    assert any("/birdsong/wav/" in c.path for c in clips)


def test_birdsong_split_is_stable_across_runs(tmp_path):
    birdsong(tmp_path)
    here = [c.split for c in get_task("birdsong").build_manifest(tmp_path)]
    code = (
        f"from hares.tasks import get_task; print([c.split for c in get_task('birdsong').build_manifest('{tmp_path}')])"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == str(here)


def test_birdsong_bad_label_and_missing_set(tmp_path):
    d = birdsong(tmp_path)
    csv = d / "warblrb10k_public_metadata_2018.csv"
    csv.write_text(csv.read_text().replace("warblrb10k,1", "warblrb10k,yes", 1))
    with pytest.raises(ValueError, match="hasbird must be 0 or 1"):
        get_task("birdsong").build_manifest(tmp_path)
    csv.unlink()
    with pytest.raises(FileNotFoundError, match="warblrb10k_public_metadata_2018.csv.*dcase.community"):
        get_task("birdsong").build_manifest(tmp_path)
