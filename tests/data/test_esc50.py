"""ESC-50 adapter on a fixture in the official layout (meta/esc50.csv + audio/)."""

from __future__ import annotations

import pytest
from fixtures_layouts import esc50

from hares.tasks import get_task


def test_esc50_folds_classes_and_cv_splits(tmp_path):
    esc50(tmp_path)
    task = get_task("esc50")
    assert task.locate(tmp_path) == tmp_path / "ESC-50-master"
    clips = task.build_manifest(tmp_path)
    assert len(clips) == 5 * 3 * 2 * 2
    assert {c.split for c in clips} == {f"fold{i}" for i in range(1, 6)}
    assert task.classes(clips)[:3] == ["dog", "rooster", "pig"] and len(task.classes(clips)) == 50
    first = next(c for c in clips if c.path.endswith("1-1000-A-0.wav"))
    assert first.labels == ("dog",) and first.split == "fold1" and first.group == "src:1000"
    splits = task.splits(clips)
    assert [name for name, _ in splits] == ["fold1", "fold2", "fold3", "fold4", "fold5"]
    for i, (name, sets) in enumerate(splits):
        assert {c.split for c in sets["test"]} == {name}
        assert {c.split for c in sets["valid"]} == {f"fold{(i + 1) % 5 + 1}"}
        assert len(sets["train"]) == 36 and len(sets["valid"]) == 12 and len(sets["test"]) == 12
        ids = [{c.path for c in sets[s]} for s in ("train", "valid", "test")]
        assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])


def test_esc50_single_fold_option(tmp_path):
    esc50(tmp_path)
    clips = get_task("esc50").build_manifest(tmp_path, single_fold=3)
    ((name, sets),) = get_task("esc50").splits(clips)
    assert name == "" and {len(v) for v in sets.values()} == {12, 36}
    assert all("/3-" in c.path for c in sets["test"]) and all("/4-" in c.path for c in sets["valid"])


def test_esc50_errors_name_file_and_url(tmp_path):
    task = get_task("esc50")
    with pytest.raises(FileNotFoundError, match="ESC-50.*github.com/karolpiczak/ESC-50"):
        task.build_manifest(tmp_path)
    d = esc50(tmp_path)
    (d / "meta" / "esc50.csv").unlink()
    with pytest.raises(FileNotFoundError, match="meta/esc50.csv.*karolpiczak"):
        task.build_manifest(tmp_path)
    d = esc50(tmp_path)
    text = (d / "meta" / "esc50.csv").read_text().replace(",0,dog,", ",0,cat,", 1)
    (d / "meta" / "esc50.csv").write_text(text)
    with pytest.raises(ValueError, match="category 'cat' does not match target 0"):
        task.build_manifest(tmp_path)
    esc50(tmp_path)
    next((d / "audio").iterdir()).unlink()
    with pytest.raises(FileNotFoundError, match="1 ESC-50 audio file"):
        task.build_manifest(tmp_path)


def test_esc50_data_root_may_be_the_dataset_folder(tmp_path):
    d = esc50(tmp_path)
    assert get_task("esc50").locate(d) == d
