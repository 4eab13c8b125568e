"""Speech Commands adapters: 35 words from the official lists, and the TFDS 12-class task with silence windows."""

from __future__ import annotations

import pytest
from fixtures_layouts import SC_SPEAKERS, speech_commands

from hares.tasks import get_task


def test_speech_commands_v2_official_lists(tmp_path):
    speech_commands(tmp_path)
    task = get_task("speech_commands_v2")
    clips = task.build_manifest(tmp_path)
    assert clips.report["clips"] == {"train": 32, "valid": 8, "test": 8}
    assert len(task.classes(clips)) == 35 and task.classes(clips)[:3] == ["backward", "bed", "bird"]
    assert {c.label for c in clips} == {"yes", "no", "bed", "zero"}
    assert {c.group for c in clips if c.split == "valid"} == {SC_SPEAKERS[4]}
    assert {c.group for c in clips if c.split == "test"} == {SC_SPEAKERS[5]}
    assert not any("_background_noise_" in c.path for c in clips)


def test_speech_commands_v1_tfds_convention(tmp_path):
    speech_commands(tmp_path)
    task = get_task("speech_commands_v1")
    clips = task.build_manifest(tmp_path)
    assert task.classes(clips) == [
        "down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes", "_silence_", "_unknown_"
    ]  # fmt: skip
    by = {s: [c for c in clips if c.split == s] for s in ("train", "valid", "test")}
    # train: 4 speakers x 4 words x 2 + 5 windows of white_noise (3.2 s: starts 0, .5, 1, 1.5, 2 s)
    assert len(by["train"]) == 37 and len(by["valid"]) == 10 and len(by["test"]) == 9
    silence = [c for c in by["train"] if c.label == "_silence_"]
    assert [(c.start, c.end) for c in silence] == [(0.0, 1.0), (0.5, 1.5), (1.0, 2.0), (1.5, 2.5), (2.0, 3.0)]
    tap = [c for c in clips if "running_tap" in c.path]
    assert len(tap) == 2 and {c.split for c in tap} == {"valid"}
    assert {c.label for c in by["train"] if "/bed/" in c.path or "/zero/" in c.path} == {"_unknown_"}
    # test = the separate test folder, never the testing_list files of the main folder
    assert all("speech_commands_test_set_v0.02" in c.path for c in by["test"])
    assert sorted({c.label for c in by["test"]}) == ["_silence_", "_unknown_", "no", "yes"]


def test_speech_commands_v1_needs_the_test_set(tmp_path):
    speech_commands(tmp_path, test_set=False)
    with pytest.raises(FileNotFoundError, match="speech_commands_test_set_v0.02"):
        get_task("speech_commands_v1").build_manifest(tmp_path)
    assert len(get_task("speech_commands_v2").build_manifest(tmp_path)) == 48


def test_speech_commands_v2_rejects_unknown_word_folder(tmp_path):
    d = speech_commands(tmp_path)
    (d / "banana").mkdir()
    (d / "banana" / "x_nohash_0.wav").write_bytes(b"")
    with pytest.raises(ValueError, match="banana"):
        get_task("speech_commands_v2").build_manifest(tmp_path)
