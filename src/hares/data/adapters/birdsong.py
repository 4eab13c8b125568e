"""Birdsong: bird presence in the three DCASE 2018 Bird Audio Detection development sets (35,690 clips, 10 s).

Layout (http://dcase.community/challenge2018/task-bird-audio-detection), under one folder:
- `ff1010bird_metadata_2018.csv`, `warblrb10k_public_metadata_2018.csv`, `BirdVoxDCASE20k_csvpublic.csv`
  (columns `itemid,datasetid,hasbird`, hasbird in {0, 1}), at the top or inside the set's folder;
- audio: each zip unpacks to `wav/<itemid>.wav`; put it in `ff1010bird/wav/`, `warblrb10k_public/wav/`,
  `BirdVox-DCASE-20k/wav/`, or all three in one top-level `wav/`.
Labels: `no_bird` (0), `bird` (1). Split [deviation: HARES used Tagliasacchi et al.'s unpublished split]:
seeded 80/10/10 stratified by (datasetid, hasbird): in each stratum the itemids are ordered by a sha256 hash
(seed "hares-birdsong-v1") and cut into runs of n - 2 round(0.1 n), round(0.1 n), round(0.1 n).
"""

from __future__ import annotations

from pathlib import Path

from hares.data.adapters._util import Manifest, check_present, read_csv, split_by_hash
from hares.data.manifest import Clip

CLASSES = ("no_bird", "bird")
SETS = (
    ("ff1010bird", "ff1010bird_metadata_2018.csv"),
    ("warblrb10k_public", "warblrb10k_public_metadata_2018.csv"),
    ("BirdVox-DCASE-20k", "BirdVoxDCASE20k_csvpublic.csv"),
)
FRACTIONS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
SEED = "hares-birdsong-v1"


def _find(root: Path, folder: str, csv_name: str) -> tuple[Path, Path]:
    csv_path = next((p for p in (root / csv_name, root / folder / csv_name) if p.is_file()), None)
    if csv_path is None:
        raise FileNotFoundError(f"expected the {folder} labels {csv_name} at {root / csv_name} or {root / folder}")
    wav = next((p for p in (root / folder / "wav", root / "wav") if p.is_dir()), None)
    if wav is None:
        raise FileNotFoundError(f"expected the {folder} audio in {root / folder / 'wav'} or {root / 'wav'}")
    return csv_path, wav


def build(root: Path) -> Manifest:
    clips, per_set = [], {}
    strata: dict[tuple[str, str], list[str]] = {}
    rows_all = []
    for folder, csv_name in SETS:
        csv_path, wav = _find(root, folder, csv_name)
        rows = read_csv(csv_path, ["itemid", "datasetid", "hasbird"])
        for i, r in enumerate(rows, 2):
            item, ds, has = r["itemid"].strip(), r["datasetid"].strip(), r["hasbird"].strip()
            if has not in ("0", "1"):
                raise ValueError(f"{csv_path}:{i}: hasbird must be 0 or 1, got {has!r}")
            strata.setdefault((ds, has), []).append(item)
            rows_all.append((wav / f"{item}.wav", ds, item, CLASSES[int(has)]))
        check_present((f"{r['itemid'].strip()}.wav" for r in rows), wav, f"{folder} audio")
        per_set[folder] = len(rows)
    assign: dict[tuple[str, str], str] = {}
    for (ds, has), items in strata.items():
        for item, split in split_by_hash(items, FRACTIONS, f"{SEED}:{ds}:{has}").items():
            assign[(ds, item)] = split
    for path, ds, item, label in rows_all:
        clips.append(Clip(str(path), (label,), assign[(ds, item)], group=f"{ds}:{item}"))
    return Manifest(clips, {"sets": per_set})
