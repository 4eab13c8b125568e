"""Tiny fixtures of each dataset's official release layout (file names, metadata columns, quirks).

Audio files are empty unless an adapter reads them (Speech Commands background noise): adapters only read
metadata and list folders. `make(name, root)` writes the fixture of a task under `root` and returns what the
adapter should find (expected clips per split).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import soundfile as sf


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"")
    return path


def write_wav(path: Path, seconds: float, sr: int = 16000) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    sf.write(str(path), np.zeros(int(seconds * sr), np.float32), sr, subtype="PCM_16")
    return path


def esc50(root: Path, classes: int = 3, per_fold: int = 2) -> Path:
    from hares.data.adapters.esc50 import CLASSES

    d = root / "ESC-50-master"
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target in range(classes):
            for k in range(per_fold):
                src = f"{fold}{target:02d}{k}"
                # two takes of one source recording share a fold (group = src_file)
                for take in "AB":
                    name = f"{fold}-{src}-{take}-{target}.wav"
                    lines.append(f"{name},{fold},{target},{CLASSES[target]},{target == 0},{src},{take}")
                    touch(d / "audio" / name)
    (d / "meta").mkdir(parents=True, exist_ok=True)
    (d / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    return d
