"""What the embedding cache knows about the audio files, so it never serves an embedding of a file that changed.

Design (issue 15): the cache key covers each file's identity, `(size, st_mtime_ns, st_ctime_ns)` of every
clip's file (`file_identities`, one `stat` per distinct file, threaded; a missing file counts as -1s). The
change time cannot be set back by `touch -d` or a copy that preserves timestamps, so a rewrite is seen even when
size and mtime are restored (a `chmod` or `chown` of the files also changes it: that costs a recompute, never a
stale number). A change gives a
new cache entry, so nothing stale can be read; the entry it replaces (the last finished one for the same encoder,
clip policy, manifest and compute settings, named by `<cache_root>/latest/<base key>`) lends it every shard whose
clips are all unchanged and sit at the same positions of the processing order. Those shards are hard-linked
(copied on filesystems without links), the others are recomputed, and the replaced entry is deleted once the
new one is finished. Because a shard's batches never span shards, a lent shard is bit-identical to what a
fresh run would compute: an entry built this way equals one built from scratch.

Why not hash the contents: that reads every byte of every file on every run, as much I/O as decoding them (a
cache hit would cost as much as extraction); the change time gives the same protection against in-place
rewrites for the price of the `stat` already made. Why not reuse per clip: clips are batched together inside a
shard, and float32 kernels sum in a batch-dependent order, so a clip recomputed among other clips could differ
from a fresh run by one float16 step; whole shards keep results bit-exact.
"""

from __future__ import annotations

import hashlib
import os
import shutil
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from hares.io import write_text

LATEST = "latest"


def _identity(path: str) -> tuple[int, int, int]:
    try:
        st = os.stat(path)
    except OSError:
        return -1, -1, -1
    return int(st.st_size), int(st.st_mtime_ns), int(st.st_ctime_ns)


def file_identities(clips: Sequence, threads: int = 16) -> np.ndarray:
    """(N, 3) int64: (size, mtime_ns, ctime_ns) of each clip's file; -1s where it cannot be read."""
    paths = sorted({c.path for c in clips})
    with ThreadPoolExecutor(threads) as pool:
        by_path = dict(zip(paths, pool.map(_identity, paths)))
    return np.array([by_path[c.path] for c in clips], dtype=np.int64).reshape(len(clips), 3)


def identities_hash(identities: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(identities, dtype="<i8").tobytes()).hexdigest()


def previous_entry(cache_root: str | os.PathLike, base_key: str, key: str) -> Path | None:
    """The last finished entry of `base_key` (same encoder, policy, manifest, compute), if it is not `key`."""
    pointer = Path(cache_root) / LATEST / base_key
    try:
        name = pointer.read_text().strip()
    except OSError:
        return None
    entry = Path(cache_root) / name
    return entry if name and name != key and (entry / ".done").is_file() else None


def adopt_shards(
    path: Path, donor: Path, order: np.ndarray, identities: np.ndarray, shard_size: int, shards: Sequence[int]
) -> list[int]:
    """Link the donor entry's finished shards whose clips are unchanged and in the same order into `path`.

    Returns the shards adopted. A shard is adopted whole (its embeddings and its bad-clip list) or not at all.
    """
    try:
        import json

        meta = json.loads((donor / "meta.json").read_text())
        donor_order = np.load(donor / "order.npy")
        donor_ids = np.load(donor / "identities.npy")
    except (OSError, ValueError):
        return []
    if int(meta.get("shard_size", -1)) != shard_size or donor_order.shape != order.shape:
        return []
    if donor_ids.shape != identities.shape:
        return []
    adopted = []
    for s in shards:
        rows = slice(s * shard_size, min((s + 1) * shard_size, len(order)))
        if not np.array_equal(order[rows], donor_order[rows]):
            continue
        idx = order[rows]
        if not np.array_equal(identities[idx], donor_ids[idx]):
            continue
        names = [f"shard-{s:05d}.npy", f"shard-{s:05d}.json"]  # the .json marks the shard finished: last
        if not all((donor / n).is_file() for n in names):
            continue
        for n in names:
            _link(donor / n, path / n)
        adopted.append(s)
    return adopted


def _link(src: Path, dst: Path) -> None:
    if dst.exists():
        return
    tmp = dst.with_name(f".{dst.name}.link")
    tmp.unlink(missing_ok=True)
    try:
        os.link(src, tmp)
    except OSError:
        shutil.copy2(src, tmp)
    os.replace(tmp, dst)


def record_entry(cache_root: str | os.PathLike, base_key: str, key: str) -> None:
    """Name `key` the latest entry of `base_key` and delete the entry it replaces (its files changed)."""
    old = previous_entry(cache_root, base_key, key)
    write_text(Path(cache_root) / LATEST / base_key, key + "\n")
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
