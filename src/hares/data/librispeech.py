"""LibriSpeech as a pre-training source (the paper's "(LS)" rows: Bidir-CPC and wav2vec 2.0 trained on LibriSpeech).

Layout (openslr.org/12, as unpacked): `LibriSpeech/<subset>/<speaker>/<chapter>/<speaker>-<chapter>-<utt>.flac`
with `<speaker>-<chapter>.trans.txt` next to the audio. `--data` may name the `LibriSpeech` folder (the subsets
`librispeech_subsets` are read: by default train-clean-100 + train-clean-360 + train-other-500 = the 960 h), a
folder that holds subset folders, or one subset folder itself (e.g. `LibriSpeech/train-clean-100`, 100.6 h).
Each utterance (mostly 10-16 s, at 16 kHz) is one clip labelled with its speaker; training takes random crops of
the configured length from it. Transcripts are not used.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from pathlib import Path

from hares.data.manifest import Clip

SUBSETS = (
    "train-clean-100",
    "train-clean-360",
    "train-other-500",
    "dev-clean",
    "dev-other",
    "test-clean",
    "test-other",
)
TRAIN_960 = ("train-clean-100", "train-clean-360", "train-other-500")
_UTTERANCE = re.compile(r"^(\d+)-(\d+)-(\d+)\.flac$")


class LibriSpeechError(ValueError):
    """A folder that is not (or not completely) in the LibriSpeech layout."""


def _is_subset(path: Path) -> bool:
    """A subset folder holds <speaker>/<chapter>/ folders with a transcript (checks the first speaker only)."""
    speakers = sorted(p for p in path.iterdir() if p.is_dir() and p.name.isdigit()) if path.is_dir() else []
    if not speakers:
        return False
    chapters = sorted(p for p in speakers[0].iterdir() if p.is_dir() and p.name.isdigit())
    return bool(chapters) and any(chapters[0].glob("*.trans.txt"))


def is_librispeech(path: str | os.PathLike) -> bool:
    """True for a `LibriSpeech` root, a folder of subset folders, or one subset folder."""
    path = Path(path)
    if not path.is_dir():
        return False
    if _is_subset(path):
        return True
    return any(_is_subset(path / s) for s in SUBSETS)


def subset_folders(path: str | os.PathLike, subsets: Sequence[str] = TRAIN_960) -> list[Path]:
    """The subset folders that `path` names: itself when it is one, else those of `subsets` present below it."""
    path = Path(path)
    if _is_subset(path):
        return [path]
    unknown = sorted(set(subsets) - set(SUBSETS))
    if unknown:
        raise LibriSpeechError(f"unknown LibriSpeech subsets {unknown}; choose from {', '.join(SUBSETS)}")
    found = [path / s for s in subsets if _is_subset(path / s)]
    if not found:
        present = [s for s in SUBSETS if (path / s).is_dir()]
        raise LibriSpeechError(f"{path}: none of the LibriSpeech subsets {list(subsets)} is here (found {present})")
    return found


def read_librispeech(path: str | os.PathLike, subsets: Sequence[str] = TRAIN_960) -> list[Clip]:
    """Every utterance of the chosen subsets as a `Clip` (labels: the speaker; group: the speaker), sorted by path.

    Files whose name does not match `<speaker>-<chapter>-<utterance>.flac` or whose folders disagree with the name
    are an error naming the file (a mixed-up copy would otherwise train on the wrong data silently).
    """
    clips: list[Clip] = []
    for folder in subset_folders(path, subsets):
        before = len(clips)
        for f in sorted(folder.glob("*/*/*.flac")):
            m = _UTTERANCE.match(f.name)
            if m is None or (m.group(1), m.group(2)) != (f.parent.parent.name, f.parent.name):
                raise LibriSpeechError(
                    f"{f}: not a LibriSpeech utterance (expected <speaker>/<chapter>/<speaker>-<chapter>-<n>.flac)"
                )
            speaker = m.group(1)
            clips.append(Clip(str(f.resolve()), (speaker,), "train", group=speaker, extra={"subset": folder.name}))
        if len(clips) == before:
            raise LibriSpeechError(f"{folder}: no .flac utterances under <speaker>/<chapter>/")
    return clips
