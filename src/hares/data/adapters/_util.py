"""Helpers shared by the dataset adapters: seeded hash splits, strict file / CSV readers, the Manifest list."""

from __future__ import annotations

import csv
import gc
import hashlib
import os
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from hares.data.manifest import Clip, Manifest, count_splits, not_utf8  # noqa: F401  (re-exported for the adapters)

AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".opus", ".m4a", ".aif", ".aiff")


def stable_hash(*parts: str) -> int:
    """A 64-bit hash of the parts that is the same in every Python run (unlike `hash()`)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big")


def unit_hash(*parts: str) -> float:
    """A deterministic number in [0, 1) from the parts."""
    return stable_hash(*parts) / 2.0**64


def unit_hasher(seed: str) -> Callable[[str], float]:
    """A fast `unit_hash(seed, key)` for many keys (the seed's digest state is computed once)."""
    prefix = hashlib.sha256(f"{seed}\x1f".encode())

    def h(key: str) -> float:
        d = prefix.copy()
        d.update(key.encode())
        return int.from_bytes(d.digest()[:8], "big") / 2.0**64

    return h


@contextmanager
def gc_paused() -> Iterator[None]:
    """Pause the cyclic garbage collector while building millions of small objects (it rescans them all)."""
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def split_by_hash(keys: Iterable[str], fractions: Sequence[tuple[str, float]], seed: str) -> dict[str, str]:
    """Assign each unique key to a split: keys ordered by their seeded hash, then cut into consecutive runs.

    Every split after the first gets `max(1, round(p * n))` keys (so none is empty), the first one the rest.
    The result depends only on the set of keys, never on their order; adding a key moves few others.
    """
    ordered = sorted(set(keys), key=lambda k: (stable_hash(seed, k), k))
    n = len(ordered)
    if n < len(fractions):
        raise ValueError(f"{n} group(s) cannot fill the {len(fractions)} splits {[f for f, _ in fractions]}")
    sizes = [max(1, round(p * n)) for _, p in fractions[1:]]
    if n - sum(sizes) < 1:
        raise ValueError(f"{n} group(s) are too few for the split fractions {list(fractions)}")
    sizes.insert(0, n - sum(sizes))
    out: dict[str, str] = {}
    start = 0
    for (name, _), size in zip(fractions, sizes):
        for k in ordered[start : start + size]:
            out[k] = name
        start += size
    return out


def require_file(path: Path, what: str) -> Path:
    if not path.is_file():
        raise FileNotFoundError(f"expected {what} at {path}, not found")
    return path


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"expected {what} folder at {path}, not found")
    return path


def read_csv(
    path: Path, required: Sequence[str], *, delimiter: str = ",", skipinitialspace: bool = False
) -> list[dict[str, str]]:
    """Read a CSV with a header into dicts; raise ValueError naming the file if a required column is missing."""
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            reader = csv.DictReader(f, delimiter=delimiter, skipinitialspace=skipinitialspace)
            header = [h.strip() for h in (reader.fieldnames or [])]
            reader.fieldnames = header
            missing = [c for c in required if c not in header]
            if missing:
                raise ValueError(f"{path}: missing column(s) {missing}; header is {header}")
            rows = list(reader)
    except UnicodeDecodeError as e:
        raise not_utf8(path, e) from None
    for i, r in enumerate(rows, 2):
        if None in r or any(r.get(c) is None for c in required):
            n = sum(v is not None for k, v in r.items() if k is not None) + len(r.get(None) or [])
            raise ValueError(f"{path}: row {i} has {n} fields, the header has {len(header)}")
    return rows


def listdir(path: Path) -> set[str]:
    """File names in a folder (one scandir call; no per-file stat)."""
    with os.scandir(path) as it:
        return {e.name for e in it}


def check_files(paths: Iterable[str], what: str) -> None:
    """Raise FileNotFoundError if any path is missing; one scandir per parent folder, no per-file stat."""
    by_dir: dict[str, set[str]] = {}
    for p in paths:
        d, name = os.path.split(p)
        by_dir.setdefault(d, set()).add(name)
    missing = []
    for d, names in by_dir.items():
        try:
            present = listdir(Path(d))
        except (FileNotFoundError, NotADirectoryError):
            present = set()
        missing += [os.path.join(d, n) for n in sorted(names - present)]
    if missing:
        raise FileNotFoundError(f"{len(missing)} {what} file(s) listed in the metadata are missing, e.g. {missing[:3]}")


def check_present(expected: Iterable[str], folder: Path, what: str) -> None:
    """Raise FileNotFoundError if any expected file name is not in `folder` (listed once)."""
    present = listdir(folder)
    missing = sorted(set(expected) - present)
    if missing:
        raise FileNotFoundError(
            f"{len(missing)} {what} file(s) listed in the metadata are missing from {folder}, e.g. {missing[:3]}"
        )
