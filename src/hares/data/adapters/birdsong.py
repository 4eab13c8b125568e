"""Birdsong: bird presence in the three DCASE 2018 Bird Audio Detection development sets (35,690 clips, 10 s).

Layout (http://dcase.community/challenge2018/task-bird-audio-detection), under one folder:
- `ff1010bird_metadata_2018.csv`, `warblrb10k_public_metadata_2018.csv`, `BirdVoxDCASE20k_csvpublic.csv`
  (columns `itemid,datasetid,hasbird`, hasbird in {0, 1}), at the top or inside the set's folder. The 2016/2017
  Bird Audio Detection editions of the first two (`ff1010bird_metadata.csv`, `warblrb10k_public_metadata.csv`,
  columns `itemid,hasbird`, the same clips and labels) are accepted too: the set's id then comes from the file;
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
SETS = (  # (folder, datasetid, label files: the 2018 edition first)
    ("ff1010bird", "ff1010bird", ("ff1010bird_metadata_2018.csv", "ff1010bird_metadata.csv")),
    ("warblrb10k_public", "warblrb10k", ("warblrb10k_public_metadata_2018.csv", "warblrb10k_public_metadata.csv")),
    ("BirdVox-DCASE-20k", "BirdVox-DCASE-20k", ("BirdVoxDCASE20k_csvpublic.csv",)),
)
FRACTIONS = (("train", 0.8), ("valid", 0.1), ("test", 0.1))
SEED = "hares-birdsong-v1"


def _find(root: Path, folder: str, csv_names: tuple[str, ...]) -> tuple[Path, Path]:
    tried = [d / name for name in csv_names for d in (root, root / folder)]
    csv_path = next((p for p in tried if p.is_file()), None)
    if csv_path is None:
        raise FileNotFoundError(f"expected the {folder} labels {csv_names[0]} at {root} or {root / folder}")
    wav = next((p for p in (root / folder / "wav", root / "wav") if p.is_dir()), None)
    if wav is None:
        raise FileNotFoundError(f"expected the {folder} audio in {root / folder / 'wav'} or {root / 'wav'}")
    return csv_path, wav


def build(root: Path) -> Manifest:
    clips, per_set = [], {}
    strata: dict[tuple[str, str], list[str]] = {}
    rows_all = []
    for folder, dataset_id, csv_names in SETS:
        csv_path, wav = _find(root, folder, csv_names)
        rows = read_csv(csv_path, ["itemid", "hasbird"])
        for i, r in enumerate(rows, 2):
            item, has = r["itemid"].strip(), r["hasbird"].strip()
            ds = (r.get("datasetid") or dataset_id).strip()
            if ds != dataset_id:
                raise ValueError(f"{csv_path}:{i}: datasetid {ds!r}, expected {dataset_id!r} for this file")
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
    return Manifest(clips, {"listed": per_set})
