"""NSynth (Engel et al. 2017): 4-s notes; instrument family (11 classes) and MIDI pitch (128 classes).

Layout (https://magenta.tensorflow.org/datasets/nsynth, the `.jsonwav.tar.gz` archives extracted side by side):
`nsynth-{train,valid,test}/examples.json` (a dict keyed by `note_str` with `pitch`, `instrument_family`,
`instrument_family_str`, `instrument_str`, ...) and `nsynth-<split>/audio/<note_str>.wav`.
Official splits (train 289,205 / valid 12,678 / test 4,096; train instruments are disjoint from valid/test).
"""

from __future__ import annotations

import json
from pathlib import Path

from hares.data.adapters._util import Manifest, check_present, require_dir, require_file
from hares.data.manifest import Clip

FOLDERS = ("nsynth", "NSynth")
FAMILIES = ("bass", "brass", "flute", "guitar", "keyboard", "mallet", "organ", "reed", "string", "synth_lead",
            "vocal")  # fmt: skip
PITCHES = tuple(str(i) for i in range(128))
PUBLISHED = (("train", 289205), ("valid", 12678), ("test", 4096))
SPLIT_DIRS = (("train", "nsynth-train"), ("valid", "nsynth-valid"), ("test", "nsynth-test"))


def build(root: Path, target: str = "instrument") -> Manifest:
    if target not in ("instrument", "pitch"):
        raise ValueError(f"target must be 'instrument' or 'pitch', got {target!r}")
    clips = []
    for split, folder in SPLIT_DIRS:
        meta = require_file(root / folder / "examples.json", f"NSynth metadata {folder}/examples.json")
        audio = require_dir(root / folder / "audio", f"NSynth {folder}/audio")
        try:
            with open(meta) as f:
                notes = json.load(f)
        except json.JSONDecodeError as e:
            raise ValueError(f"{meta}: not valid JSON ({e})") from e
        if not isinstance(notes, dict):
            raise ValueError(f"{meta}: expected a JSON object keyed by note_str")
        for key in sorted(notes):
            note = notes[key]
            try:
                if target == "instrument":
                    family = int(note["instrument_family"])
                    label = FAMILIES[family]
                    if note.get("instrument_family_str", label) != label:
                        raise ValueError(f"instrument_family {family} != {note['instrument_family_str']!r}")
                else:
                    pitch = int(note["pitch"])
                    if not 0 <= pitch < 128:
                        raise ValueError(f"pitch {pitch} not in 0..127")
                    label = str(pitch)
            except (KeyError, IndexError, TypeError, ValueError) as e:
                raise ValueError(f"{meta}: note {key!r}: bad {target} field ({e})") from e
            clips.append(Clip(str(audio / f"{key}.wav"), (label,), split))
        check_present((f"{k}.wav" for k in notes), audio, f"NSynth {folder}")
    return Manifest(clips)
