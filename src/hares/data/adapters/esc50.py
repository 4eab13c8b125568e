"""ESC-50 (Piczak 2015): 2,000 five-second clips, 50 classes, 5 pre-arranged folds.

Layout (https://github.com/karolpiczak/ESC-50, `master.zip` unpacks to `ESC-50-master/`):
`audio/{FOLD}-{CLIP_ID}-{TAKE}-{TARGET}.wav` and `meta/esc50.csv` with columns
`filename,fold,target,category,esc10,src_file,take`. Clip split = `fold1`..`fold5` (the task turns folds into
5-fold cross-validation); group = `src_file` (fragments of one Freesound recording share a fold).
"""

from __future__ import annotations

from pathlib import Path

from hares.data.adapters._util import Manifest, check_present, read_csv, require_dir, require_file
from hares.data.manifest import Clip

# Class names in `target` order (0..49).
CLASSES = (
    "dog", "rooster", "pig", "cow", "frog", "cat", "hen", "insects", "sheep", "crow",
    "rain", "sea_waves", "crackling_fire", "crickets", "chirping_birds", "water_drops", "wind", "pouring_water",
    "toilet_flush", "thunderstorm",
    "crying_baby", "sneezing", "clapping", "breathing", "coughing", "footsteps", "laughing", "brushing_teeth",
    "snoring", "drinking_sipping",
    "door_wood_knock", "mouse_click", "keyboard_typing", "door_wood_creaks", "can_opening", "washing_machine",
    "vacuum_cleaner", "clock_alarm", "clock_tick", "glass_breaking",
    "helicopter", "chainsaw", "siren", "car_horn", "engine", "train", "church_bells", "airplane", "fireworks",
    "hand_saw",
)  # fmt: skip
FOLDS = ("fold1", "fold2", "fold3", "fold4", "fold5")


def build(root: Path, single_fold: int = 0) -> Manifest:
    """Rows of `meta/esc50.csv`; `single_fold=k` keeps only fold k as test (train/valid from the rest)."""
    meta = require_file(root / "meta" / "esc50.csv", "the ESC-50 metadata meta/esc50.csv")
    audio = require_dir(root / "audio", "the ESC-50 audio/")
    rows = read_csv(meta, ["filename", "fold", "target", "category", "src_file"])
    clips = []
    for i, r in enumerate(rows, 2):
        try:
            fold, target = int(r["fold"]), int(r["target"])
        except ValueError as e:
            raise ValueError(f"{meta}:{i}: fold and target must be integers ({e})") from e
        if not 1 <= fold <= 5 or not 0 <= target < len(CLASSES):
            raise ValueError(f"{meta}:{i}: fold {fold} not in 1..5 or target {target} not in 0..49")
        if r["category"] != CLASSES[target]:
            raise ValueError(f"{meta}:{i}: category {r['category']!r} does not match target {target}")
        clips.append(Clip(str(audio / r["filename"]), (r["category"],), f"fold{fold}", group=f"src:{r['src_file']}"))
    check_present((Path(c.path).name for c in clips), audio, "ESC-50 audio")
    if single_fold:
        if not 1 <= single_fold <= 5:
            raise ValueError(f"single_fold must be in 1..5, got {single_fold}")
        test, valid = f"fold{single_fold}", f"fold{single_fold % 5 + 1}"
        rename = {test: "test", valid: "valid"}
        clips = [Clip(c.path, c.labels, rename.get(c.split, "train"), c.group) for c in clips]
    return Manifest(clips)
