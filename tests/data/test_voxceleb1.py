"""VoxCeleb1 adapter: iden_split.txt over the dev and test zips."""

from __future__ import annotations

import pytest
from fixtures_layouts import voxceleb1

from hares.tasks import get_task


def test_voxceleb1_iden_split(tmp_path):
    voxceleb1(tmp_path)
    task = get_task("voxceleb1")
    clips = task.build_manifest(tmp_path)
    assert clips.report["clips"] == {"train": 10, "valid": 10, "test": 10}
    assert task.classes(clips) == ["id10001", "id10002", "id10003", "id10004", "id10270"]
    test_speaker = [c for c in clips if c.label == "id10270"]
    assert len(test_speaker) == 6 and all("/vox1_test_wav/wav/id10270/" in c.path for c in test_speaker)
    assert {c.split for c in clips if "/1zcIwhmdeo4/" in c.path} == {"train"}


def test_voxceleb1_missing_test_zip_and_bad_line(tmp_path):
    d = voxceleb1(tmp_path)
    f = d / "iden_split.txt"
    f.write_text(f.read_text() + "4 id10001/x/00001.wav\n")
    with pytest.raises(ValueError, match="iden_split.txt:31"):
        get_task("voxceleb1").build_manifest(tmp_path)
    f.write_text("\n".join(f.read_text().splitlines()[:-1]) + "\n")
    for p in sorted((d / "vox1_test_wav").rglob("*"), reverse=True):
        p.rmdir() if p.is_dir() else p.unlink()
    with pytest.raises(FileNotFoundError, match="1 speaker folder.*id10270.*vox1_test_wav.zip"):
        get_task("voxceleb1").build_manifest(tmp_path)
