"""Fluent Speech Commands (Lugosch et al. 2019): 31 intents = unique (action, object, location) triples.

Layout (`fluent_speech_commands_dataset/`): `data/{train,valid,test}_data.csv` with header
`,path,speakerId,transcription,action,object,location` (first column an unnamed index; `path` relative to the
dataset root, e.g. `wavs/speakers/<speakerId>/<uuid>.wav`). Official speaker-disjoint splits
(train 23,132 / valid 3,118 / test 3,793). Label = `action|object|location`; the train split must hold exactly
31 intents and valid/test none beyond them. Group = speakerId.
"""

from __future__ import annotations

from pathlib import Path

from hares.data.adapters._util import Manifest, check_files, read_csv, require_file
from hares.data.manifest import Clip

NUM_INTENTS = 31
COLUMNS = ("path", "speakerId", "action", "object", "location")


def intent(row: dict[str, str]) -> str:
    return f"{row['action'].strip()}|{row['object'].strip()}|{row['location'].strip()}"


def build(root: Path, num_intents: int = NUM_INTENTS) -> Manifest:
    clips = []
    for split in ("train", "valid", "test"):
        path = require_file(root / "data" / f"{split}_data.csv", f"FSC metadata data/{split}_data.csv")
        for r in read_csv(path, COLUMNS):
            clips.append(Clip(str(root / r["path"].strip()), (intent(r),), split, group=f"spk:{r['speakerId']}"))
    train = {c.label for c in clips if c.split == "train"}
    if num_intents and len(train) != num_intents:
        raise ValueError(f"{root / 'data/train_data.csv'}: {len(train)} intents in train, expected {num_intents}")
    extra = sorted({c.label for c in clips if c.split != "train"} - train)
    if extra:
        raise ValueError(f"{root / 'data'}: valid/test intents not seen in train: {extra}")
    check_files((c.path for c in clips), "FSC audio")
    return Manifest(clips, {"intents": len(train)})
