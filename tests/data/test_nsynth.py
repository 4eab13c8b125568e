"""NSynth adapters: examples.json + audio/, instrument family (11) and MIDI pitch (128) labels."""

from __future__ import annotations

import json

import pytest
from fixtures_layouts import nsynth

from hares.tasks import get_task


def test_nsynth_instrument_and_pitch(tmp_path):
    nsynth(tmp_path)
    inst, pitch = get_task("nsynth_instrument"), get_task("nsynth_pitch")
    a, b = inst.build_manifest(tmp_path), pitch.build_manifest(tmp_path)
    assert a.report["clips"] == b.report["clips"] == {"train": 72, "valid": 8, "test": 8}
    assert [c.path for c in a] == [c.path for c in b]  # same audio, one embedding cache
    assert inst.classes(a)[0] == "bass" and len(inst.classes(a)) == 11
    assert pitch.classes(b) == [str(i) for i in range(128)]
    first = a[0]
    assert first.path.endswith("nsynth-train/audio/bass_acoustic_000-021-025.wav") and first.label == "bass"
    assert b[0].label == "21"
    assert {c.label for c in a if c.split == "test"} == {"string", "synth_lead"}  # instruments 8, 9


def test_nsynth_inconsistent_family_and_missing_audio(tmp_path):
    d = nsynth(tmp_path)
    f = d / "nsynth-valid" / "examples.json"
    notes = json.loads(f.read_text())
    key = sorted(notes)[0]
    notes[key]["instrument_family_str"] = "brass"
    f.write_text(json.dumps(notes))
    with pytest.raises(ValueError, match="instrument_family 6 != 'brass'"):
        get_task("nsynth_instrument").build_manifest(tmp_path)
    assert len(get_task("nsynth_pitch").build_manifest(tmp_path)) == 88
    next((d / "nsynth-test" / "audio").iterdir()).unlink()
    with pytest.raises(FileNotFoundError, match="1 NSynth nsynth-test file"):
        get_task("nsynth_pitch").build_manifest(tmp_path)
