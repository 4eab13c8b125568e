"""Fluent Speech Commands adapter: official CSVs (unnamed index column, quoted transcriptions), 31 intents."""

from __future__ import annotations

import pytest
from fixtures_layouts import fluent_speech_commands

from hares.tasks import get_task


def test_fsc_intents_splits_speakers(tmp_path):
    fluent_speech_commands(tmp_path)
    task = get_task("fluent_speech_commands")
    clips = task.build_manifest(tmp_path)
    assert clips.report["clips"] == {"train": 62, "valid": 11, "test": 11}
    classes = task.classes(clips)
    assert len(classes) == 31 and classes == sorted(classes)
    assert "increase|lights|kitchen" in classes
    assert clips[0].labels == ("activate|lights|none",) and clips[0].group == "spk:Aspk"
    assert {c.group for c in clips if c.split == "test"} == {"spk:Dspk"}


def test_fsc_rejects_intent_unseen_in_train(tmp_path):
    d = fluent_speech_commands(tmp_path)
    f = d / "data" / "test_data.csv"
    f.write_text(f.read_text().replace(",activate,lights,none", ",activate,socks,washroom", 1))
    with pytest.raises(ValueError, match="not seen in train.*activate\\|socks\\|washroom"):
        task = get_task("fluent_speech_commands")
        task.build_manifest(tmp_path)


def test_fsc_needs_31_train_intents(tmp_path):
    d = fluent_speech_commands(tmp_path)
    f = d / "data" / "train_data.csv"
    f.write_text("\n".join(line for line in f.read_text().splitlines() if "juice,kitchen" not in line) + "\n")
    with pytest.raises(ValueError, match="intents in train, expected 31"):
        get_task("fluent_speech_commands").build_manifest(tmp_path)


def test_fsc_missing_audio_and_short_row(tmp_path):
    d = fluent_speech_commands(tmp_path)
    (d / "wavs" / "speakers" / "Dspk" / "D-000.wav").unlink()
    with pytest.raises(FileNotFoundError, match="1 FSC audio file.*D-000.wav"):
        get_task("fluent_speech_commands").build_manifest(tmp_path)
    f = d / "data" / "valid_data.csv"
    f.write_text(f.read_text() + "99,wavs/speakers/C/x.wav,C\n")
    with pytest.raises(ValueError, match="valid_data.csv: row 13 has 3 fields, the header has 7"):
        get_task("fluent_speech_commands").build_manifest(tmp_path)
