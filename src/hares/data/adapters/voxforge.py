"""VoxForge language identification (6 languages), with the TFDS `voxforge` split algorithm.

Layout: the archives of the TFDS URL list
(https://storage.googleapis.com/tfds-data/downloads/voxforge/voxforge_urls.txt, `wget -i voxforge_urls.txt -x`),
each `<user>-<date>-<id>.tgz` **extracted in place** into a folder of its name (e.g.
`find . -name '*.tgz' | while read f; do mkdir -p "${f%.tgz}" && tar xzf "$f" -C "${f%.tgz}"; done`), giving
`.../<lang>/Trunk/Audio/Main/16kHz_16bit/<archive>/[<archive>/]wav/*.wav` (the folder holding `wav/` names the
archive).
A simpler `<lang>/<archive>/wav/*.wav` tree is accepted too. Language = the path component before `Trunk` (else
the first component); only `.wav` members count (as TFDS); languages outside the six are skipped and counted.
Speaker = the archive name before the first `-` ("anonymous" is one big group).
Split (TFDS `_get_inter_splits_by_group`): sorted unique speakers shuffled by `np.random.RandomState(0)`, cut
70/10/20 at `int(cumulative_p * n)`; all clips of a speaker in one split.
"""

from __future__ import annotations

import os
from pathlib import Path

from hares.data.adapters._util import Manifest
from hares.data.manifest import Clip

CLASSES = ("de", "en", "es", "fr", "it", "ru")
SPLIT_PROBS = (("train", 0.7), ("valid", 0.1), ("test", 0.2))


def tfds_group_splits(groups: list[str], split_probs=SPLIT_PROBS, seed: int = 0) -> dict[str, str]:
    """TFDS: shuffle the sorted unique groups with RandomState(seed), boundaries int(cum_p * n), last = n."""
    import numpy as np

    order = sorted(set(groups))
    np.random.RandomState(seed).shuffle(order)
    n, total, out = len(order), 0.0, {}
    for i, (name, p) in enumerate(split_probs):
        start = int(total * n)
        total += p
        end = n if i == len(split_probs) - 1 else int(total * n)
        for g in order[start:end]:
            out[g] = name
    return out


def _language(parts: tuple[str, ...]) -> str:
    return parts[parts.index("Trunk") - 1] if "Trunk" in parts[1:] else parts[0]


def build(root: Path) -> Manifest:
    found: list[tuple[str, str, str]] = []  # (path, language, speaker)
    skipped: dict[str, int] = {}
    archives = 0
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames.sort()
        if Path(dirpath).name != "wav":
            archives += sum(f.endswith(".tgz") for f in filenames)
            continue
        rel = Path(dirpath).relative_to(root).parts
        if len(rel) < 3:
            continue
        lang, archive = _language(rel), rel[-2]
        wavs = sorted(f for f in filenames if f.lower().endswith(".wav"))
        if lang not in CLASSES:
            skipped[lang] = skipped.get(lang, 0) + len(wavs)
            continue
        speaker = archive.split("-")[0]
        found += [(os.path.join(dirpath, f), lang, speaker) for f in wavs]
    if not found:
        hint = f" ({archives} .tgz archives found: extract each in place into a folder of its name)" if archives else ""
        raise FileNotFoundError(f"no <lang>/.../<archive>/wav/*.wav files under {root}{hint}")
    assign = tfds_group_splits([s for _, _, s in found])
    clips = [Clip(p, (lang,), assign[spk], group=spk) for p, lang, spk in found]
    return Manifest(clips, {"speakers": len(assign), "skipped_languages": skipped, "tgz_archives": archives})
