"""Atomic file writes: nothing half-written is ever visible under the final name.

Files are created with the mode a plain `open()` would give them (0666 minus the user's umask), not
`mkstemp`'s private 0600, so a shared cache, a report or a checkpoint handed to a colleague stays readable.
"""

from __future__ import annotations

import json
import os
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

_UMASK_LOCK = threading.Lock()


def current_umask() -> int:
    """The process umask (read by setting and restoring it, under a lock)."""
    with _UMASK_LOCK:
        mask = os.umask(0o022)
        os.umask(mask)
    return mask


def file_mode() -> int:
    """The mode `open()` gives a new file: 0666 minus the umask."""
    return 0o666 & ~current_umask()


@contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to `path`; on success it is renamed onto `path` (atomic on POSIX)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        # mkstemp creates 0600, and some writers (safetensors) replace the file with their own 0600 one
        os.chmod(tmp, file_mode())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=True, default=str) + "\n")


def check_output_dir(path: str | os.PathLike, what: str = "--out") -> Path:
    """Raise ValueError (one line) unless `path` is, or can be created as, a folder this process can write into.

    Called before any compute, so a typo in `--out` costs nothing. Creates the folder (and its parents).
    """
    path = Path(path).expanduser()
    if path.exists() and not path.is_dir():
        raise ValueError(f"{what} {path}: exists and is not a folder")
    try:
        path.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise ValueError(f"{what} {path}: cannot create the folder ({e.strerror or e})") from None
    try:
        fd, probe = tempfile.mkstemp(prefix=".hares-write-check.", dir=path)
        os.close(fd)
        os.unlink(probe)
    except OSError as e:
        raise ValueError(f"{what} {path}: folder is not writable ({e.strerror or e})") from None
    return path


MAX_NPZ_BYTES = 4 * 2**30  # 1e9 float32 values: 16x the paper's Slowfast NFNet-F0


def load_npz_checked(path: str | os.PathLike, max_bytes: int = MAX_NPZ_BYTES):
    """`np.load(path, allow_pickle=False)` for an untrusted .npz, after reading every member's header.

    A member whose header claims more bytes than the member holds, or members that together claim more than
    `max_bytes`, raise ValueError (one line, naming the file and the member) before any array is allocated.
    """
    import zipfile

    import numpy as np
    from numpy.lib import format as npy

    total = 0
    try:
        with zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                with zf.open(info) as f:
                    version = npy.read_magic(f)
                    if version == (1, 0):
                        shape, _, dtype = npy.read_array_header_1_0(f)
                    else:
                        shape, _, dtype = npy.read_array_header_2_0(f)
                    if dtype.hasobject:
                        raise ValueError(f"{path}: member {info.filename} holds Python objects (pickle); refused")
                    claimed = int(np.prod(shape, dtype=object)) * dtype.itemsize
                    held = info.file_size - f.tell()
                    if claimed != held:
                        raise ValueError(
                            f"{path}: member {info.filename} claims shape {shape} {dtype} ({claimed:,d} bytes) but "
                            f"holds {held:,d} bytes"
                        )
                    total += claimed
                    if total > max_bytes:
                        raise ValueError(f"{path}: its arrays exceed the {max_bytes:,d}-byte limit")
    except (zipfile.BadZipFile, OSError, EOFError) as e:
        raise ValueError(f"{path}: not a readable .npz ({e})") from None
    return np.load(path, allow_pickle=False)
