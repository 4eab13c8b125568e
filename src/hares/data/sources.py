"""Pre-training sources: any audio collection -> `Clip`s, the same clip type evaluation uses (`hares.data.manifest`).

`open_source(path)` reads, by what the path holds (or `data_format`):
- `folder`: every audio file below it; a clip's label (supervised training only) is its top sub-folder's name;
- `manifest`: a clip CSV (`path[,label|labels][,start,end]`, read by the custom-task reader
  `hares.data.adapters.csv_task.read_clip_csv`: labels joined by `;`, BOM ignored) or a JSONL manifest of `Clip`s;
- `audioset`: an AudioSet folder (`class_labels_indices.csv`, segment CSVs, audio), read by the AudioSet adapter's
  `read_subsets`: the same rules and the same errors as evaluation;
- `shards`: WebDataset tar shards written by `hares shards` (`hares.data.shards`), streamed by the training loop;
- `librispeech`: LibriSpeech as unpacked (`LibriSpeech/<subset>/<speaker>/<chapter>/*.flac`, `hares.data.librispeech`):
  the `LibriSpeech` folder (subsets `librispeech_subsets`, by default the 960 h) or one subset folder.
Every parser lives once: the training loop keeps only its dataset, sampler and shard stream (`hares.train.data`).
"""

from __future__ import annotations

import json
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from hares.data.adapters._util import AUDIO_EXTENSIONS
from hares.data.manifest import Clip, read_manifest, resolve
from hares.data.shards import SHARD_INDEX, count_members, shard_list

AUDIOSET_SUBSETS = {
    "balanced_train": "balanced_train_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}
FORMATS = ("folder", "manifest", "audioset", "shards", "librispeech")


class DataError(ValueError):
    """A dataset that cannot be used (empty, malformed, or no decodable clip); the message names the file."""


@dataclass
class Source:
    """A scanned collection: map-style `items` (Clips), or `shards` for streaming; `label_names` fixes the target
    order (supervised training)."""

    kind: str
    items: list[Clip]
    label_names: list[str]
    shards: list[str]
    shard_counts: list[int]
    missing: int = 0  # AudioSet rows whose audio file is absent

    def __len__(self) -> int:
        return sum(self.shard_counts) if self.shards else len(self.items)


def scan_folder(root: str | os.PathLike) -> list[Clip]:
    """Every audio file below `root` (sorted); its label is its top sub-folder's name (none for files at the top)."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTENSIONS and p.is_file())
    if not files:
        raise DataError(f"{root}: no audio files ({', '.join(AUDIO_EXTENSIONS)}) found in this folder or below")
    return [Clip(str(p), (p.relative_to(root).parts[0],) if p.parent != root else (), "train") for p in files]


def read_csv_manifest(path: str | os.PathLike) -> list[Clip]:
    """A clip CSV for pre-training: labels optional, split and group ignored (see `read_clip_csv`)."""
    from hares.data.adapters.csv_task import read_clip_csv

    try:
        clips, _ = read_clip_csv(path, labels_required=False)
    except ValueError as e:
        raise DataError(str(e)) from None
    return clips


def read_jsonl_manifest(path: str | os.PathLike) -> list[Clip]:
    """A JSONL manifest of `Clip`s (`write_manifest`); relative paths are relative to the file."""
    try:
        clips = read_manifest(path)
    except ValueError as e:
        raise DataError(str(e)) from None
    if not clips:
        raise DataError(f"{path}: the manifest has no rows")
    base = Path(path).parent
    return [Clip(resolve(c.path, base), tuple(c.labels), c.split, c.group, c.start, c.end) for c in clips]


def read_audioset(
    root: str | os.PathLike, subsets: Sequence[str] = ("balanced_train", "unbalanced_train")
) -> tuple[list[Clip], list[str], int]:
    """(clips with audio, the 527 MIDs in class-index order, rows without audio) of the chosen segment lists."""
    from hares.data.adapters.audioset import read_subsets

    unknown = [s for s in subsets if s not in AUDIOSET_SUBSETS]
    if unknown:
        raise DataError(f"unknown AudioSet subset(s) {unknown}; choose from {sorted(AUDIOSET_SUBSETS)}")
    files = tuple((AUDIOSET_SUBSETS[s], "train") for s in subsets)
    try:  # every listed subset but the (huge, often skipped) unbalanced one must be there
        rows, mids, report = read_subsets(Path(root), files, optional=(AUDIOSET_SUBSETS["unbalanced_train"],))
    except (FileNotFoundError, ValueError) as e:
        raise DataError(str(e)) from None
    missing = sum(report["missing"].values())
    if not rows:
        raise DataError(f"{root}: no AudioSet segment of {list(subsets)} has an audio file ({missing} rows missing)")
    return [Clip(file, labels, "train") for file, _, _, labels in rows], list(mids), missing


def detect_format(path: str | os.PathLike) -> str:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data folder or manifest")
    if path.is_file():
        return "shards" if path.suffix in (".tar", ".txt") else "manifest"
    if (path / "class_labels_indices.csv").is_file():
        return "audioset"
    if (path / SHARD_INDEX).is_file() or any(path.glob("*.tar")):
        return "shards"
    from hares.data.librispeech import is_librispeech

    return "librispeech" if is_librispeech(path) else "folder"


def open_source(
    path: str | os.PathLike, data_format: str = "auto", audioset_subsets=None, librispeech_subsets=None
) -> Source:
    """Scan `path` in the given layout (auto-detected by default)."""
    fmt = detect_format(path) if data_format == "auto" else data_format
    path = Path(path)
    if fmt == "shards":
        shards = shard_list(path)
        if not shards:
            raise DataError(f"{path}: no .tar shards")
        index = path / SHARD_INDEX if path.is_dir() else None
        if index is not None and index.is_file():
            meta = json.loads(index.read_text())
            counts = {s["name"]: s["count"] for s in meta["shards"]}
            label_names = list(meta.get("label_names", []))
        else:
            counts, label_names = {}, []
        shard_counts = [counts.get(s.name) or count_members(s) for s in shards]
        return Source("shards", [], label_names, [str(s) for s in shards], shard_counts)
    missing = 0
    if fmt == "folder":
        items = scan_folder(path)
    elif fmt == "manifest":
        items = read_jsonl_manifest(path) if path.suffix in (".jsonl", ".json") else read_csv_manifest(path)
    elif fmt == "audioset":
        items, label_names, missing = read_audioset(path, audioset_subsets or ("balanced_train", "unbalanced_train"))
    elif fmt == "librispeech":
        from hares.data.librispeech import TRAIN_960, LibriSpeechError, read_librispeech

        try:
            items = read_librispeech(path, librispeech_subsets or TRAIN_960)
        except LibriSpeechError as e:
            raise DataError(str(e)) from e
    else:
        raise DataError(f"unknown data format {fmt!r}; choose from {FORMATS}")
    if fmt != "audioset":
        label_names = sorted({lab for it in items for lab in it.labels})
    return Source(fmt, items, label_names, [], [], missing)
