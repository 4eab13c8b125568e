"""VoxForge adapter: extracted archives of the TFDS URL list, the TFDS speaker-group split (seed 0, 70/10/20)."""

from __future__ import annotations

import numpy as np
import pytest
from fixtures_layouts import voxforge

from hares.data.adapters.voxforge import tfds_group_splits
from hares.tasks import get_task


def test_voxforge_languages_speakers_split(tmp_path):
    voxforge(tmp_path)
    task = get_task("voxforge")
    clips = task.build_manifest(tmp_path)
    assert clips.report["skipped_languages"] == {"nl": 10}
    assert task.classes(clips) == ["de", "en", "es", "fr", "it", "ru"]
    assert {c.label for c in clips} == {"de", "en", "fr"} and len(clips) == 30
    assert all(c.path.endswith(".wav") and "/Trunk/" in c.path for c in clips)
    speakers = sorted({c.group for c in clips})
    assert len(speakers) == 13 and "anonymous" in speakers and "user01" in speakers
    # TFDS: shuffle the sorted groups with RandomState(0), cut at int(0.7 n), int(0.8 n)
    order = list(speakers)
    np.random.RandomState(0).shuffle(order)
    want = {g: "train" for g in order[:9]} | {g: "valid" for g in order[9:10]} | {g: "test" for g in order[10:]}
    assert {c.group: c.split for c in clips} == want


def test_tfds_group_splits_boundaries():
    groups = [f"g{i}" for i in range(10)] * 3
    out = tfds_group_splits(groups)
    assert sorted(out) == sorted(set(groups))
    # exactly TFDS, float quirk included: int((0.7 + 0.1) * 10) == 7, so 10 groups give no valid group
    assert [sum(v == s for v in out.values()) for s in ("train", "valid", "test")] == [7, 0, 3]
    assert out == tfds_group_splits(list(reversed(groups)))
    out = tfds_group_splits([f"g{i}" for i in range(100)])
    assert [sum(v == s for v in out.values()) for s in ("train", "valid", "test")] == [70, 10, 20]


def test_voxforge_unextracted_archives_hint(tmp_path):
    d = tmp_path / "voxforge" / "de" / "Trunk"
    d.mkdir(parents=True)
    (d / "user-20100101-abc.tgz").write_bytes(b"")
    with pytest.raises(FileNotFoundError, match="1 .tgz archives found: extract each in place"):
        get_task("voxforge").build_manifest(tmp_path)
