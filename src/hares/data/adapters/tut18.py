"""TUT Urban Acoustic Scenes 2018 development set (DCASE 2018 task 1A): 10 scenes, 8,640 ten-second clips.

Layout (Zenodo 1228142, `TUT-urban-acoustic-scenes-2018-development/`): `audio/<scene>-<city>-<loc>-<seg>-a.wav`,
`meta.csv` (tab-separated: `filename scene_label identifier source_label`; identifier = recording location, e.g.
`barcelona-0`), `evaluation_setup/fold1_train.txt` and `fold1_evaluate.txt` (lines `audio/<file>.wav[<TAB>scene]`).
Split: test = fold1_evaluate (2,518); train = fold1_train (6,122) minus valid, where valid = whole recording
locations of fold1_train picked per scene in seeded-hash order until they hold >= 10% of its train clips.
Group = `<scene>/<identifier>`, so recording locations never straddle splits.
"""

from __future__ import annotations

from pathlib import Path

from hares.data.adapters._util import Manifest, check_present, read_csv, require_dir, require_file, stable_hash
from hares.data.manifest import Clip

CLASSES = ("airport", "bus", "metro", "metro_station", "park", "public_square", "shopping_mall", "street_pedestrian",
           "street_traffic", "tram")  # fmt: skip
VALID_FRACTION = 0.1
SEED = "hares-tut18-valid-v1"


def _read_fold(path: Path) -> list[tuple[str, str]]:
    out = []
    with open(path) as f:
        for line in f:
            parts = line.strip().split("\t")
            if parts[0]:
                out.append((parts[0], parts[1] if len(parts) > 1 else ""))
    return out


def choose_valid(train: list[tuple[str, str]], fraction: float = VALID_FRACTION) -> set[tuple[str, str]]:
    """(scene, identifier) locations for valid, chosen from the train clips only.

    Per scene, locations in seeded-hash order are moved to valid until they hold >= `fraction` of the scene's
    train clips; a scene always keeps at least one train location.
    """
    size: dict[tuple[str, str], int] = {}
    for key in train:
        size[key] = size.get(key, 0) + 1
    chosen: set[tuple[str, str]] = set()
    for scene in sorted({s for s, _ in size}):
        locs = sorted((k for k in size if k[0] == scene), key=lambda k: (stable_hash(SEED, *k), k))
        total, got = sum(size[k] for k in locs), 0
        for k in locs[:-1]:
            if got >= fraction * total:
                break
            chosen.add(k)
            got += size[k]
    return chosen


def build(root: Path, valid_fraction: float = VALID_FRACTION) -> Manifest:
    meta_path = require_file(root / "meta.csv", "the TUT18 meta.csv (tab-separated)")
    audio = require_dir(root / "audio", "the TUT18 audio/")
    setup = root / "evaluation_setup"
    rows = read_csv(meta_path, ["filename", "scene_label", "identifier"], delimiter="\t")
    meta = {r["filename"].strip(): (r["scene_label"].strip(), r["identifier"].strip()) for r in rows}
    folds = {}
    for split, name in (("train", "fold1_train.txt"), ("test", "fold1_evaluate.txt")):
        path = require_file(setup / name, f"the TUT18 evaluation_setup/{name}")
        folds[split] = _read_fold(path)
        for rel, scene in folds[split]:
            if rel not in meta:
                raise ValueError(f"{path}: {rel} is not in {meta_path}")
            if scene and scene != meta[rel][0]:
                raise ValueError(f"{path}: {rel} labelled {scene!r} but {meta[rel][0]!r} in meta.csv")
    for rel, (scene, _) in meta.items():
        if scene not in CLASSES:
            raise ValueError(f"{meta_path}: {rel}: unknown scene {scene!r}")
    valid = choose_valid([meta[rel] for rel, _ in folds["train"]], valid_fraction)
    clips = []
    for split, items in folds.items():
        for rel, _ in items:
            scene, ident = meta[rel]
            s = "valid" if split == "train" and (scene, ident) in valid else split
            clips.append(Clip(str(root / rel), (scene,), s, group=f"{scene}/{ident}"))
    check_present((Path(rel).name for rel in meta), audio, "TUT18 audio")
    return Manifest(clips, {"valid_locations": len(valid)})
