"""The manifest: one row per clip, the only thing that flows from dataset adapters and pre-training sources to
everything downstream. `Clip` and `Manifest` are the only clip types of hares (evaluation and pre-training alike)."""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path

from hares.io import atomic_path

SPLITS = ("train", "valid", "test")


@dataclass(frozen=True)
class Clip:
    """One audio clip of a task.

    path: absolute path of the audio file.
    labels: class names (one for single-label tasks, any number for multi-label ones).
    split: "train", "valid" or "test" (ESC-50 uses fold names "fold1".."fold5"; the task resolves them).
    group: what must stay inside one split (speaker, recording, source); "" when the dataset has none.
    start, end: optional segment of the file in seconds (end 0 = to the end of the file).
    """

    path: str
    labels: tuple[str, ...]
    split: str
    group: str = ""
    start: float = 0.0
    end: float = 0.0
    extra: dict = field(default_factory=dict, compare=False, hash=False)

    @property
    def label(self) -> str:
        return self.labels[0]


class Manifest(list):
    """A list of clips plus `report`: what the adapter counted (clips per split, skipped rows and why)."""

    def __init__(self, clips: Iterable[Clip] = (), report: dict | None = None) -> None:
        super().__init__(clips)
        self.report: dict = dict(report or {})
        self.report.setdefault("clips", count_splits(self))


def count_splits(clips: Iterable[Clip]) -> dict[str, int]:
    counts: dict[str, int] = {}
    for c in clips:
        counts[c.split] = counts.get(c.split, 0) + 1
    return dict(sorted(counts.items()))


def not_utf8(path: str | os.PathLike, e: UnicodeDecodeError) -> ValueError:
    """The one-line error for a text file that is not UTF-8 (raise it `from None`)."""
    bad = e.object[e.start : e.start + 1].hex() if isinstance(e.object, bytes) else "?"
    return ValueError(f"{path}: not UTF-8 text (byte 0x{bad} cannot be decoded); save it as UTF-8")


def duplicate_lines(keys: Iterable, first_line: int = 2) -> list[tuple[int, int, object]]:
    """(first line, repeated line, key) for every key seen before; lines are numbered from `first_line`."""
    seen: dict = {}
    out = []
    for i, key in enumerate(keys, first_line):
        if key in seen:
            out.append((seen[key], i, key))
        else:
            seen[key] = i
    return out


def write_manifest(clips: Iterable[Clip], path: str | os.PathLike) -> None:
    """Write clips as JSON lines, atomically."""
    with atomic_path(path) as tmp, open(tmp, "w") as f:
        for c in clips:
            row = asdict(c)
            row["labels"] = list(c.labels)
            f.write(json.dumps(row, sort_keys=True) + "\n")


def read_manifest(path: str | os.PathLike) -> list[Clip]:
    clips = []
    with open(path, encoding="utf-8") as f:
        lines = _read_lines(f, path)
        for i, line in enumerate(lines, 1):
            if not line.strip():
                continue
            try:
                row = json.loads(line)
                row["labels"] = tuple(row["labels"])
                clips.append(Clip(**row))
            except (ValueError, KeyError, TypeError) as e:
                raise ValueError(f"{path}:{i}: malformed manifest row ({e})") from e
    return clips


def _read_lines(f, path) -> list[str]:
    try:
        return f.readlines()
    except UnicodeDecodeError as e:
        raise not_utf8(path, e) from None


def manifest_hash(clips: Iterable[Clip]) -> str:
    """A content hash of the rows (paths, labels, splits, groups, segments), order-sensitive."""
    h = hashlib.sha256()
    for c in clips:
        h.update(json.dumps([c.path, list(c.labels), c.split, c.group, c.start, c.end]).encode())
        h.update(b"\n")
    return h.hexdigest()


def check_disjoint(clips: Iterable[Clip], where: str = "", groups: str = "raise") -> dict[str, list[str]]:
    """Check that no clip (path + segment) and no non-empty group appears in more than one split.

    A clip in two splits always raises ValueError. A group in two splits raises with `groups="raise"` (splits hares
    makes itself); with `groups="report"` (a split the release defines, followed as published) the straddling groups
    are returned as {group: [splits]} for the manifest report instead.
    """
    if groups not in ("raise", "report"):
        raise ValueError(f"groups must be 'raise' or 'report', got {groups!r}")
    by_key: dict[tuple, str] = {}
    by_group: dict[str, str] = {}
    straddling: dict[str, set[str]] = {}
    for c in clips:
        key = (c.path, c.start, c.end)
        if by_key.setdefault(key, c.split) != c.split:
            raise ValueError(f"{where}{c.path}: appears in splits {by_key[key]!r} and {c.split!r}")
        if c.group and by_group.setdefault(c.group, c.split) != c.split:
            if groups == "raise":
                raise ValueError(f"{where}group {c.group!r} appears in splits {by_group[c.group]!r} and {c.split!r}")
            straddling.setdefault(c.group, {by_group[c.group]}).add(c.split)
    return {g: sorted(s) for g, s in sorted(straddling.items())}


def resolve(path: str | os.PathLike, base: str | os.PathLike) -> str:
    p = Path(path)
    return str(p if p.is_absolute() else (Path(base) / p).resolve())
