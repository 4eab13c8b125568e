"""MagnaTagATune adapter: tab-separated quoted annotations_final.csv, fixed top-50 tags, folder split."""

from __future__ import annotations

import pytest
from fixtures_layouts import magnatagatune

from hares.data.adapters.magnatagatune import TOP50
from hares.tasks import get_task


def test_mtat_tags_split_and_corrupt_clips(tmp_path):
    magnatagatune(tmp_path)
    task = get_task("magnatagatune")
    clips = task.build_manifest(tmp_path)
    assert clips.report["clips"] == {"train": 24, "valid": 2, "test": 6}
    assert len(clips.report["dropped"]) == 1
    assert task.classes(clips) == list(TOP50) and len(TOP50) == len(set(TOP50)) == 50
    first = clips[0]
    assert first.path.endswith("/mp3/0/artist_0-album-00-track-30-59.mp3") and first.split == "train"
    assert first.labels == ("guitar",)  # "singer" is not a top-50 tag
    assert clips[1].labels == ("female vocal", "choral")  # top-50 order, "jazz" dropped
    assert {c.path.split("/")[-2] for c in clips if c.split == "valid"} == {"c"}
    assert {c.path.split("/")[-2] for c in clips if c.split == "test"} == {"d", "e", "f"}


def test_mtat_rejects_comma_separated_file(tmp_path):
    d = magnatagatune(tmp_path)
    f = d / "annotations_final.csv"
    f.write_text(f.read_text().replace("\t", ","))
    with pytest.raises(ValueError, match="tab-separated header"):
        get_task("magnatagatune").build_manifest(tmp_path)
