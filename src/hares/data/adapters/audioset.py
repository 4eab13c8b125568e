"""AudioSet (Gemmeke et al. 2017): 10-s YouTube segments, 527 labels (multi-label, mAP).

Google distributes only metadata; audio is whatever the user downloaded. Layout under the dataset folder:
- `class_labels_indices.csv` (`index,mid,display_name`, names quoted when they hold commas),
  `balanced_train_segments.csv`, `eval_segments.csv`, optionally `unbalanced_train_segments.csv`: three header
  lines starting with `#`, then `YTID, start_seconds, end_seconds, "mid1,mid2,..."` (comma + space separated);
- audio, one file per segment (already cut to the segment), named by YouTube id, in either convention:
  PANNs `Y<YTID>.wav` (the leading `Y` is stripped) or `<YTID>.<wav|flac|...>` (HF mirror), anywhere below
  `audios/` or `audio/`. The CSVs may also sit one folder down (e.g. `meta/`).
Split: test = eval_segments; train = balanced (+ unbalanced unless `balanced_only`), of which a seeded 5% of the
ids (sha256 of the id) is valid. Segments whose audio is missing (dead YouTube videos are common) are skipped and
counted in `report["missing"]` per CSV; labels are MIDs (a MID absent from class_labels_indices is an error).
"""

from __future__ import annotations

import csv
import os
import re
from pathlib import Path

from hares.data.adapters._util import AUDIO_EXTENSIONS, Manifest, unit_hasher
from hares.data.manifest import Clip

VALID_FRACTION = 0.05
SEED = "hares-audioset-valid-v1"
SEGMENT_FILES = (("balanced_train_segments.csv", "train"), ("unbalanced_train_segments.csv", "train"),
                 ("eval_segments.csv", "test"))  # fmt: skip


def read_class_labels(path: Path) -> dict[str, str]:
    """MID -> display name, in index order, from class_labels_indices.csv."""
    out: dict[str, str] = {}
    with open(path, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = [h.strip() for h in next(reader, [])]
        if header[:3] != ["index", "mid", "display_name"]:
            raise ValueError(f"{path}: expected header index,mid,display_name, got {header}")
        for i, row in enumerate(reader, 2):
            if not row:
                continue
            if len(row) != 3 or int(row[0]) != len(out):
                raise ValueError(f"{path}:{i}: expected '{len(out)},<mid>,<name>', got {row}")
            out[row[1]] = row[2]
    return out


YTID = re.compile(r"^[A-Za-z0-9_-]{11}$")
MAX_SEGMENT_S = 10.0


def _comment(line: str) -> bool:
    """The header lines start with `# ` (a data row whose id a spreadsheet turned into `#NAME?` is not one)."""
    return line.startswith("# ") or line.rstrip() == "#"


def read_segments(path: Path) -> list[tuple[str, float, float, tuple[str, ...]]]:
    """(ytid, start, end, mids) rows of a segments CSV; the `# ` header lines skipped.

    Every malformed row is an error naming the line: a YouTube id that is not 11 characters of [A-Za-z0-9_-] (a
    spreadsheet round-trip turns ids starting with `-` into `#NAME?`), times that are not numbers or not a segment
    of at most 10 s (copies that rewrote `30.000` as `30000`), an empty label list.
    """
    out = []
    with open(path, newline="", encoding="utf-8-sig") as f:
        numbered = [(i, line) for i, line in enumerate(f, 1) if line.strip() and not _comment(line)]
        rows = csv.reader((line for _, line in numbered), skipinitialspace=True, quotechar='"')
        for (i, _), row in zip(numbered, rows):
            where = f"{path}:{i}"
            if len(row) != 4:
                raise ValueError(f"{where}: expected 'YTID, start, end, \"mids\"', got {row}")
            ytid = row[0].strip()
            if not YTID.match(ytid):
                raise ValueError(f"{where}: {ytid!r} is not a YouTube id (11 characters of A-Z a-z 0-9 _ -); "
                                 "was the file opened in a spreadsheet?")  # fmt: skip
            try:
                start, end = float(row[1]), float(row[2])
            except ValueError as e:
                raise ValueError(f"{where}: bad start/end ({e})") from e
            if not 0 <= start < end <= start + MAX_SEGMENT_S + 1e-6:
                raise ValueError(f"{where}: segment {row[1]}-{row[2]} s is not 0 < length <= 10 s")
            mids = tuple(m.strip() for m in row[3].split(",") if m.strip())
            if not mids:
                raise ValueError(f"{where}: {ytid} has no labels")
            out.append((ytid, start, end, mids))
    return out


def index_audio(root: Path) -> dict[str, str]:
    """YTID -> audio path, from the files under `audio/` and `audios/` (one walk, no stat).

    A file is named by its YouTube id (`<YTID>.flac`, HF mirror) or, PANNs style, by the id behind a `Y`
    (`Y<YTID>.wav`, so ids starting with `-` are not read as options). Ids are exactly 11 characters, so a 12-character
    stem starting with `Y` can only be the PANNs form: the two never collide."""
    found: dict[str, str] = {}
    for sub in ("audio", "audios"):
        base = root / sub
        if not base.is_dir():
            continue
        for dirpath, _, filenames in os.walk(base):
            for name in filenames:
                stem, ext = os.path.splitext(name)
                if ext.lower() not in AUDIO_EXTENSIONS:
                    continue
                if len(stem) == 12 and stem[0] == "Y":
                    stem = stem[1:]
                found.setdefault(stem, os.path.join(dirpath, name))
    return found


def locate(root: Path, name: str) -> Path | None:
    """`root/name`, else `root/<folder>/name` (e.g. a `meta/` folder), else None."""
    if (root / name).is_file():
        return root / name
    return next(iter(sorted(root.glob(f"*/{name}"))), None)


def read_subsets(
    root: Path, files: tuple[tuple[str, str], ...] = SEGMENT_FILES, optional: tuple[str, ...] = (),
) -> tuple[list[tuple[str, str, str, tuple[str, ...]]], dict[str, str], dict[str, dict[str, int]]]:  # fmt: skip
    """The segments of an AudioSet folder that have audio: ([(path, ytid, split, mids)], MID -> display name in
    class-index order, {"listed": rows per CSV, "missing": rows without audio per CSV}).

    Shared by the evaluation adapter and the pre-training source. `files` are (CSV name, split); those in
    `optional` may be absent. A malformed row, a MID outside class_labels_indices.csv or an id listed in two CSVs
    is an error naming the file and line; a segment whose audio is missing (dead videos are common) is counted.
    """
    labels_csv = locate(root, "class_labels_indices.csv")
    if labels_csv is None:
        raise FileNotFoundError(f"expected class_labels_indices.csv in {root}")
    mids = read_class_labels(labels_csv)
    if not (root / "audio").is_dir() and not (root / "audios").is_dir():
        raise FileNotFoundError(f"expected the downloaded audio under {root / 'audios'} (PANNs) or {root / 'audio'}")
    audio = index_audio(root)
    out, listed, missing = [], {}, {}
    seen: dict[str, str] = {}
    shared: dict[tuple[str, ...], tuple[str, ...]] = {}  # one tuple object per distinct label set (memory)
    known = mids.keys()
    for name, split in files:
        path = locate(root, name)
        if path is None:
            if name in optional:
                continue
            raise FileNotFoundError(f"expected the AudioSet segment list {name} in {root}")
        rows = read_segments(path)
        listed[name], missing[name] = len(rows), 0
        for ytid, _, _, labels in rows:
            if not known >= set(labels):
                unknown = [m for m in labels if m not in mids]
                raise ValueError(f"{path}: {ytid}: label(s) {unknown} not in class_labels_indices.csv")
            if seen.setdefault(ytid, name) != name:
                raise ValueError(f"{path}: {ytid} also listed in {seen[ytid]}")
            file = audio.get(ytid)
            if file is None:
                missing[name] += 1
                continue
            out.append((file, ytid, split, shared.setdefault(labels, labels)))
    return out, mids, {"listed": listed, "missing": missing, "audio_files": len(audio)}


def build(root: Path, balanced_only: bool = False, valid_fraction: float = VALID_FRACTION) -> Manifest:
    files = tuple(f for f in SEGMENT_FILES if not (balanced_only and f[0].startswith("unbalanced")))
    rows, _, report = read_subsets(root, files, optional=("unbalanced_train_segments.csv",))
    in_valid = unit_hasher(SEED)
    clips = [Clip(file, labels, "valid" if split == "train" and in_valid(ytid) < valid_fraction else split)
             for file, ytid, split, labels in rows]  # fmt: skip
    return Manifest(clips, report)
