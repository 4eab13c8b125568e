"""VoxCeleb1 speaker identification (Nagrani et al. 2017): 1,251 speakers, official `iden_split.txt`.

Layout (https://www.robots.ox.ac.uk/~vgg/data/voxceleb/vox1.html): `iden_split.txt` (lines
`<1|2|3> id10001/1zcIwhmdeo4/00001.wav`: 1 train, 2 valid, 3 test) and the audio of both zips
(`vox1_dev_wav.zip`, `vox1_test_wav.zip`) as `wav/<speaker>/<video>/<nnnnn>.wav`, in one `wav/` or in
`vox1_dev_wav/wav/` + `vox1_test_wav/wav/`. Label = speaker id (classes = sorted ids, 0..1250); train 138,361 /
valid 6,904 / test 8,251. Files are checked by listing each video folder once (no per-file stat).

Identification puts every speaker in every split by design, so the group is the YouTube video
(`<speaker>/<video>`): the split is the release's, and videos it puts in two splits are listed in the manifest
report. The optional `vox1_meta.csv` (tab-separated despite its name, header `VoxCeleb1 ID<TAB>VGGFace1 ID<TAB>Gender
<TAB>Nationality<TAB>Set`) is checked when present: it must list every speaker of iden_split.txt; its dev/test
speaker counts go to the report.
"""

from __future__ import annotations

import os
from pathlib import Path

from hares.data.adapters._util import Manifest, check_files, read_csv, require_file
from hares.data.manifest import Clip

WAV_DIRS = ("wav", "vox1_dev_wav/wav", "vox1_test_wav/wav", "dev/wav", "test/wav")
SPLIT_CODES = {"1": "train", "2": "valid", "3": "test"}
META_COLUMNS = ("VoxCeleb1 ID", "Set")


def read_meta(path: Path) -> dict[str, str]:
    """speaker id -> `Set` (dev / test) from vox1_meta.csv (tab-separated, header fields with spaces)."""
    rows = read_csv(path, META_COLUMNS, delimiter="\t")
    out = {}
    for i, r in enumerate(rows, 2):
        speaker = r["VoxCeleb1 ID"].strip()
        if not speaker.startswith("id") or speaker in out:
            raise ValueError(f"{path}:{i}: {speaker!r} is not a new VoxCeleb1 id (idNNNNN)")
        out[speaker] = r["Set"].strip()
    return out


def _speaker_dirs(root: Path) -> dict[str, Path]:
    where: dict[str, Path] = {}
    for d in WAV_DIRS:
        base = root / d
        if base.is_dir():
            with os.scandir(base) as it:
                for e in it:
                    if e.is_dir():
                        where.setdefault(e.name, base)
    return where


def build(root: Path, check_audio: bool = True) -> Manifest:
    split_file = require_file(root / "iden_split.txt", "the VoxCeleb1 identification split iden_split.txt")
    where = _speaker_dirs(root)
    if not where:
        raise FileNotFoundError(f"no speaker folders in any of {[str(root / d) for d in WAV_DIRS]}")
    clips, missing = [], set()
    with open(split_file) as f:
        for i, line in enumerate(f, 1):
            parts = line.split()
            if not parts:
                continue
            if len(parts) != 2 or parts[0] not in SPLIT_CODES or parts[1].count("/") != 2:
                raise ValueError(f"{split_file}:{i}: expected '<1|2|3> idXXXXX/<video>/<n>.wav', got {line.strip()!r}")
            speaker, video, _ = parts[1].split("/")
            base = where.get(speaker)
            if base is None:
                missing.add(speaker)
                continue
            clips.append(Clip(str(base / parts[1]), (speaker,), SPLIT_CODES[parts[0]], group=f"{speaker}/{video}"))
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} speaker folder(s) of iden_split.txt not found under {root} (e.g. {sorted(missing)[:3]}); "
            "both vox1_dev_wav.zip and vox1_test_wav.zip are needed"
        )
    if check_audio:
        check_files((c.path for c in clips), "VoxCeleb1 audio")
    report: dict = {"speakers": len(where)}
    meta_path = root / "vox1_meta.csv"
    if meta_path.is_file():
        meta = read_meta(meta_path)
        unlisted = sorted({c.label for c in clips} - set(meta))
        if unlisted:
            raise ValueError(f"{meta_path}: speakers of iden_split.txt missing, e.g. {unlisted[:3]}")
        report["meta_sets"] = {s: sum(v == s for v in meta.values()) for s in sorted(set(meta.values()))}
        extra = sorted(set(meta) - {c.label for c in clips})
        if extra:  # a partial download, or a modified copy (one circulates with invented ids such as id10000)
            report["meta_not_in_split"] = extra[:20]
    return Manifest(clips, report)
