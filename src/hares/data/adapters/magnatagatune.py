"""MagnaTagATune (Law et al. 2009): ~29-s MP3 clips, the 50 most frequent tags (multi-label, mAP).

Layout (https://mirg.city.ac.uk/codeapps/the-magnatagatune-dataset): `annotations_final.csv` (tab-separated
despite its name, fields quoted: `clip_id`, 188 binary tag columns, `mp3_path`) and the mp3 folders `0`..`9`,
`a`..`f` (from `mp3.zip.001-003`), either beside the CSV or under `mp3/`.
Split by folder (Dieleman & Schrauwen): `0`-`b` train, `c` valid, `d`-`f` test. The three empty/corrupt mp3s
everybody drops are dropped (`report["dropped"]`). Clips with none of the 50 tags are kept (HARES counts 26k).
The 50 tags are the fixed list below (the most frequent columns of the release), so the test split never
chooses them.
"""

from __future__ import annotations

import csv
from pathlib import Path

from hares.data.adapters._util import Manifest, check_files, require_file
from hares.data.manifest import Clip

TOP50 = (
    "guitar", "classical", "slow", "techno", "strings", "drums", "electronic", "rock", "fast", "piano", "ambient",
    "beat", "violin", "vocal", "synth", "female", "indian", "opera", "male", "singing", "vocals", "no vocals",
    "harpsichord", "loud", "quiet", "flute", "woman", "male vocal", "no vocal", "pop", "soft", "sitar", "solo", "man",
    "classic", "choir", "voice", "new age", "dance", "male voice", "female vocal", "beats", "harp", "cello",
    "no voice", "weird", "country", "metal", "female voice", "choral",
)  # fmt: skip
CORRUPT = frozenset({
    "6/norine_braun-now_and_zen-08-gently-117-146.mp3",
    "8/jacob_heringman-josquin_des_prez_lute_settings-19-gintzler__pater_noster-204-233.mp3",
    "9/american_baroque-dances_and_suites_of_rameau_and_couperin-25-le_petit_rien_xiveme_ordre_couperin-88-117.mp3",
})  # fmt: skip
FOLDER_SPLIT = {**{c: "train" for c in "0123456789ab"}, "c": "valid", **{c: "test" for c in "def"}}


def build(root: Path) -> Manifest:
    ann = require_file(root / "annotations_final.csv", "the MagnaTagATune annotations_final.csv (tab-separated)")
    audio = root / "mp3" if (root / "mp3").is_dir() else root
    with open(ann, newline="", encoding="utf-8") as f:
        reader = csv.reader(f, delimiter="\t")
        header = next(reader, [])
        if len(header) < 3 or header[0] != "clip_id" or header[-1] != "mp3_path":
            raise ValueError(
                f"{ann}: expected a tab-separated header clip_id<TAB>tags...<TAB>mp3_path, got {header[:3]}"
            )
        missing = [t for t in TOP50 if t not in header]
        if missing:
            raise ValueError(f"{ann}: tag column(s) {missing} missing")
        cols = [(header.index(t), t) for t in TOP50]
        clips, dropped, skipped = [], [], 0
        for i, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != len(header):
                raise ValueError(f"{ann}:{i}: {len(row)} fields, header has {len(header)}")
            rel = row[-1].strip()
            if not rel:
                skipped += 1
                continue
            if rel in CORRUPT:
                dropped.append(rel)
                continue
            split = FOLDER_SPLIT.get(rel.split("/")[0])
            if split is None:
                raise ValueError(f"{ann}:{i}: mp3_path {rel!r} is not in a folder 0-9 or a-f")
            labels = tuple(t for j, t in cols if row[j].strip() == "1")
            clips.append(Clip(str(audio / rel), labels, split))
    if not (audio / "0").is_dir():
        raise FileNotFoundError(f"expected the mp3 folders 0..f under {root} or {root / 'mp3'}")
    check_files((c.path for c in clips), "MagnaTagATune mp3")
    return Manifest(clips, {"dropped": dropped, "no_path": skipped})
