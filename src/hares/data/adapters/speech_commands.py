"""Speech Commands (Warden 2018), v0.02 audio: the 35-word task and the TFDS 12-class task.

Layout: the main tar `speech_commands_v0.02.tar.gz` extracted into a folder (e.g. `speech_commands_v0.02/`):
`<word>/<speaker>_nohash_<n>.wav` (35 word folders), `_background_noise_/*.wav`, `validation_list.txt`,
`testing_list.txt` (paths relative to the folder). The 12-class task also needs the separate test tar
`speech_commands_test_set_v0.02.tar.gz` extracted beside it as `speech_commands_test_set_v0.02/` (or inside the
main folder under that name or `test_set/`): `<label>/*.wav` with 10 words, `_silence_`, `_unknown_`.

- protocol "35": label = word folder; valid = validation_list, test = testing_list, train = the rest.
- protocol "12" (TFDS `speech_commands`): the 10 words, every other word -> `_unknown_`; train = main folder minus
  both lists, valid = validation_list, test = the test tar; `_silence_` for train/valid = 1-s windows with 0.5-s
  hop of each `_background_noise_` file (`range(0, n - sr, sr // 2)`), all of `running_tap.wav` in valid.
Group = the speaker hash (the official lists keep speakers disjoint); noise windows are grouped per file.
"""

from __future__ import annotations

import os
from pathlib import Path

from hares.data.adapters._util import Manifest, require_dir, require_file
from hares.data.manifest import Clip

FOLDERS = ("speech_commands_v0.02", "SpeechCommands", "speech_commands")
TEST_FOLDERS = ("speech_commands_test_set_v0.02", "test_set")
WORDS_10 = ("down", "go", "left", "no", "off", "on", "right", "stop", "up", "yes")
CLASSES_12 = (*WORDS_10, "_silence_", "_unknown_")
CLASSES_35 = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four", "go", "happy",
    "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right", "seven", "sheila", "six", "stop",
    "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)  # fmt: skip
NOISE = "_background_noise_"
VALID_NOISE = "running_tap.wav"


def _speaker(name: str) -> str:
    return name.split("_nohash_")[0]


def _read_list(path: Path) -> set[str]:
    with open(path) as f:
        return {line.strip().replace("\\", "/") for line in f if line.strip()}


def _word_files(root: Path) -> dict[str, list[str]]:
    """label folder -> sorted wav names (one scandir per folder; `_background_noise_` and hidden ones skipped)."""
    words = {}
    with os.scandir(root) as it:
        dirs = sorted(
            e.name for e in it if e.is_dir() and e.name not in (NOISE, *TEST_FOLDERS) and not e.name.startswith(".")
        )
    for w in dirs:
        with os.scandir(root / w) as it:
            names = sorted(e.name for e in it if e.name.endswith(".wav"))
        if names:
            words[w] = names
    if not words:
        raise FileNotFoundError(f"no <word>/*.wav folders in {root}")
    return words


def _test_root(root: Path) -> Path:
    tried = [root.parent / TEST_FOLDERS[0]] + [root / f for f in TEST_FOLDERS]
    for p in tried:
        if p.is_dir():
            return p
    raise FileNotFoundError(
        f"the 12-class task needs the test tar (speech_commands_test_set_v0.02.tar.gz) extracted at one of "
        f"{[str(p) for p in tried]}; download http://download.tensorflow.org/data/speech_commands_test_set_v0.02.tar.gz"
    )


def silence_windows(path: Path, split: str) -> list[Clip]:
    """1-s windows with 0.5-s hop over a background-noise file, as TFDS: `range(0, n - sr, sr // 2)`."""
    import soundfile as sf

    info = sf.info(str(path))
    sr, n = info.samplerate, info.frames
    return [
        Clip(str(path), ("_silence_",), split, group=f"{NOISE}/{path.name}", start=s / sr, end=(s + sr) / sr)
        for s in range(0, n - sr, sr // 2)
    ]


def build(root: Path, protocol: str = "35") -> Manifest:
    if protocol not in ("12", "35"):
        raise ValueError(f"protocol must be '12' or '35', got {protocol!r}")
    valid_list = _read_list(require_file(root / "validation_list.txt", "validation_list.txt"))
    test_list = _read_list(require_file(root / "testing_list.txt", "testing_list.txt"))
    words = _word_files(root)
    if protocol == "35":
        unknown = sorted(set(words) - set(CLASSES_35))
        if unknown:
            raise ValueError(f"{root}: word folders {unknown} are not among the 35 words of v0.02")
    clips = []
    for w, names in words.items():
        label = w if protocol == "35" or w in WORDS_10 else "_unknown_"
        for name in names:
            rel = f"{w}/{name}"
            split = "valid" if rel in valid_list else "test" if rel in test_list else "train"
            if protocol == "12" and split == "test":
                continue
            clips.append(Clip(str(root / w / name), (label,), split, group=_speaker(name)))
    report: dict = {"words": len(words)}
    if protocol == "12":
        noise_dir = require_dir(root / NOISE, f"the {NOISE}")
        noise = sorted(p for p in noise_dir.iterdir() if p.suffix == ".wav")
        if not noise:
            raise FileNotFoundError(f"no background-noise wavs in {noise_dir}")
        for p in noise:
            clips += silence_windows(p, "valid" if p.name == VALID_NOISE else "train")
        test_root = _test_root(root)
        test_words = _word_files(test_root)
        for label in sorted(test_words):
            if label not in CLASSES_12:
                raise ValueError(f"{test_root}: folder {label!r} is not one of the 12 classes {list(CLASSES_12)}")
            for name in test_words[label]:
                group = _speaker(name) if "_nohash_" in name else ""
                clips.append(Clip(str(test_root / label / name), (label,), "test", group=group))
        report["test_root"] = str(test_root)
    return Manifest(clips, report)
