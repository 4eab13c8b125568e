"""Tiny fixtures of each dataset's official release layout (file names, metadata columns, quirks).

Audio files are empty unless an adapter reads them (Speech Commands background noise): adapters only read
metadata and list folders. `make(name, root)` writes the fixture of a task under `root` and returns what the
adapter should find (expected clips per split).
"""

from __future__ import annotations

import json
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


def tut18(root: Path, scenes=("airport", "bus", "park"), locations: int = 10, segments: int = 3) -> Path:
    """meta.csv (tab-separated) + evaluation_setup/fold1_{train,evaluate,test}.txt; locations 0-6 train, 7-9 test."""
    d = root / "TUT-urban-acoustic-scenes-2018-development"
    meta = ["filename\tscene_label\tidentifier\tsource_label"]
    train, evaluate = [], []
    for scene in scenes:
        for loc in range(locations):
            for seg in range(segments):
                rel = f"audio/{scene}-barcelona-{loc}-{seg}-a.wav"
                touch(d / rel)
                meta.append(f"{rel}\t{scene}\tbarcelona-{loc}\ta")
                (train if loc < 7 else evaluate).append(f"{rel}\t{scene}")
    (d / "meta.csv").write_text("\n".join(meta) + "\n")
    setup = d / "evaluation_setup"
    setup.mkdir()
    (setup / "fold1_train.txt").write_text("\n".join(train) + "\n")
    (setup / "fold1_evaluate.txt").write_text("\n".join(evaluate) + "\n")
    (setup / "fold1_test.txt").write_text("\n".join(e.split("\t")[0] for e in evaluate) + "\n")
    return d


BIRD_SETS = (
    ("ff1010bird", "ff1010bird_metadata_2018.csv", "ff1010bird"),
    ("warblrb10k_public", "warblrb10k_public_metadata_2018.csv", "warblrb10k"),
    ("BirdVox-DCASE-20k", "BirdVoxDCASE20k_csvpublic.csv", "BirdVox-DCASE-20k"),
)


def birdsong(root: Path, per_set: int = 20) -> Path:
    """ff1010 audio in its own ff1010bird/wav/, warblr + BirdVox sharing a top-level wav/; CSVs at the top."""
    d = root / "birdsong"
    for k, (folder, csv_name, dsid) in enumerate(BIRD_SETS):
        lines = ["itemid,datasetid,hasbird"]
        for i in range(per_set):
            item = str(1000 + i) if k == 0 else f"{k}{i:03d}-uuid-{dsid[:4]}"
            lines.append(f"{item},{dsid},{i % 2}")
            touch((d / folder / "wav" if k == 0 else d / "wav") / f"{item}.wav")
        (d / csv_name).write_text("\n".join(lines) + "\n")
    return d


SC_WORDS = ("yes", "no", "bed", "zero")
SC_SPEAKERS = ("0a1b2c3d", "1b2c3d4e", "2c3d4e5f", "3d4e5f60", "4e5f6071", "5f607182")  # 4: valid, 5: test


def speech_commands(root: Path, test_set: bool = True) -> Path:
    """v0.02 main folder (<word>/<spk>_nohash_<n>.wav, lists, _background_noise_) + the separate test folder."""
    d = root / "speech_commands_v0.02"
    valid, test = [], []
    for w in SC_WORDS:
        for k, spk in enumerate(SC_SPEAKERS):
            for n in range(2):
                rel = f"{w}/{spk}_nohash_{n}.wav"
                touch(d / rel)
                if k == 4:
                    valid.append(rel)
                elif k == 5:
                    test.append(rel)
    (d / "validation_list.txt").write_text("\n".join(valid) + "\n")
    (d / "testing_list.txt").write_text("\n".join(test) + "\n")
    write_wav(d / "_background_noise_" / "white_noise.wav", 3.2)  # range(0, 51200 - 16000, 8000): 5 windows
    write_wav(d / "_background_noise_" / "running_tap.wav", 2.0)  # 2 windows, all valid
    (d / "_background_noise_" / "README.md").write_text("noise\n")
    (d / "LICENSE").write_text("CC BY 4.0\n")
    if test_set:
        t = root / "speech_commands_test_set_v0.02"
        for label in ("yes", "no", "_unknown_"):
            for n in range(2):
                touch(t / label / f"{SC_SPEAKERS[5]}_nohash_{n}{label[:2]}.wav")
        for n in range(3):
            touch(t / "_silence_" / f"silence_{n}.wav")
    return d


FSC_ACTIONS = ("activate", "deactivate", "increase", "decrease", "bring", "change language")


def fsc_intents() -> list[tuple[str, str, str]]:
    combos = []
    for a in FSC_ACTIONS:
        for o in ("lights", "music", "volume", "heat", "lamp", "juice"):
            for loc in ("none", "kitchen"):
                combos.append((a, o, loc))
    return combos[:31]


def fluent_speech_commands(root: Path) -> Path:
    """data/{train,valid,test}_data.csv with the unnamed index column; speakers A,B train, C valid, D test."""
    d = root / "fluent_speech_commands_dataset"
    (d / "data").mkdir(parents=True)
    intents = fsc_intents()
    for split, speakers in (("train", "AB"), ("valid", "C"), ("test", "D")):
        lines = [",path,speakerId,transcription,action,object,location"]
        idx = 0
        for spk in speakers:
            for j, (a, o, loc) in enumerate(intents):
                if split != "train" and j % 3:
                    continue
                rel = f"wavs/speakers/{spk}spk/{spk}-{j:03d}.wav"
                touch(d / rel)
                lines.append(f'{idx},{rel},{spk}spk,"Okay, {a} the {o}",{a},{o},{loc}')
                idx += 1
        (d / "data" / f"{split}_data.csv").write_text("\n".join(lines) + "\n")
    (d / "data" / "speaker_demographics.csv").write_text("speakerId,Self-reported fluency level\n")
    return d


def voxforge(root: Path, speakers: int = 20) -> Path:
    """wget -x tree of extracted archives: .../<lang>/Trunk/Audio/Main/16kHz_16bit/<user>-<date>-<id>/wav/*.wav."""
    d = root / "voxforge"
    langs = ("de", "en", "fr", "nl")  # nl: not one of the six, skipped
    base = "www.repository.voxforge1.org/downloads/{}/Trunk/Audio/Main/16kHz_16bit"
    for s in range(speakers):
        lang = langs[s % 4]
        user = "anonymous" if s % 5 == 0 else f"user{s:02d}"
        arch = d / base.format(lang) / f"{user}-20100{s % 9 + 1}01-x{s}"
        for n in range(2):
            touch(arch / "wav" / f"a{n:04d}.wav")
        touch(arch / "flac" / "a0000.flac")  # only .wav members count, as in TFDS
        (arch / "etc").mkdir()
        (arch / "etc" / "PROMPTS").write_text("prompts\n")
    return d


def voxceleb1(root: Path) -> Path:
    """iden_split.txt + vox1_dev_wav/wav/ (4 speakers) + vox1_test_wav/wav/ (1 speaker)."""
    d = root / "VoxCeleb1"
    lines = []
    speakers = [("vox1_dev_wav", f"id1000{i}") for i in range(1, 5)] + [("vox1_test_wav", "id10270")]
    for zip_dir, spk in speakers:
        for v, video in enumerate(("1zcIwhmdeo4", "7w0IBEWc9Qw", "Zxhsj2mTA-o")):
            for n in range(1, 3):
                rel = f"{spk}/{video}/{n:05d}.wav"
                touch(d / zip_dir / "wav" / rel)
                lines.append(f"{v + 1} {rel}")
    (d / "iden_split.txt").write_text("\n".join(lines) + "\n")
    return d


def nsynth(root: Path) -> Path:
    """nsynth-{train,valid,test}/examples.json + audio/<note_str>.wav."""
    from hares.data.adapters.nsynth import FAMILIES

    d = root / "nsynth"
    plan = {"train": (0, 6, 12), "valid": (6, 8, 4), "test": (8, 10, 4)}  # instruments [a, b), notes each
    for split, (a, b, notes) in plan.items():
        examples = {}
        for inst in range(a, b):
            family = FAMILIES[inst % len(FAMILIES)]
            for k in range(notes):
                pitch, vel = 21 + 7 * k, 25 * (k % 5 + 1)
                key = f"{family}_acoustic_{inst:03d}-{pitch:03d}-{vel:03d}"
                examples[key] = {
                    "note": inst * 1000 + k, "note_str": key, "instrument": inst,
                    "instrument_str": f"{family}_acoustic_{inst:03d}", "pitch": pitch, "velocity": vel,
                    "sample_rate": 16000, "qualities": [0] * 10, "qualities_str": [],
                    "instrument_family": FAMILIES.index(family), "instrument_family_str": family,
                    "instrument_source": 0, "instrument_source_str": "acoustic",
                }  # fmt: skip
                touch(d / f"nsynth-{split}" / "audio" / f"{key}.wav")
        (d / f"nsynth-{split}" / "examples.json").write_text(json.dumps(examples, indent=2))
    return d


def magnatagatune(root: Path, per_folder: int = 2) -> Path:
    """annotations_final.csv: tab-separated, every field quoted; mp3s in 0-9, a-f; one known-corrupt clip."""
    from hares.data.adapters.magnatagatune import CORRUPT, TOP50

    d = root / "MagnaTagATune"
    tags = ["no voice", "singer", *[t for t in TOP50 if t != "no voice"], "duet", "jazz"]
    header = ["clip_id", *tags, "mp3_path"]
    rows = ["\t".join(f'"{h}"' for h in header)]
    clip = 0
    for folder in "0123456789abcdef":
        for k in range(per_folder):
            rel = f"{folder}/artist_{folder}-album-{k:02d}-track-30-59.mp3"
            on = {"guitar", "singer"} if k == 0 else {"female vocal", "jazz", "choral"}
            values = ["1" if t in on else "0" for t in tags]
            rows.append("\t".join(f'"{v}"' for v in [str(clip), *values, rel]))
            touch(d / "mp3" / rel)
            clip += 1
    bad = sorted(CORRUPT)[0]
    rows.append("\t".join(f'"{v}"' for v in [str(clip), *(["0"] * len(tags)), bad]))
    touch(d / "mp3" / bad)
    (d / "annotations_final.csv").write_text("\n".join(rows) + "\n")
    (d / "clip_info_final.csv").write_text('"clip_id"\t"track_number"\n')
    return d


AUDIOSET_MIDS = ("/m/09x0r", "/m/05zppz", "/m/02zsn", "/t/dd00088", "/m/0ytgt")
AUDIOSET_NAMES = ("Speech", "Male speech, man speaking", "Female speech, woman speaking", "Breathing, sigh", "Kid")


def _segments(path: Path, ids: list[str], start: float = 30.0) -> None:
    lines = [
        "# Segments csv created Sun Mar  5 10:54:31 2017",
        f"# num_ytids={len(ids)}, num_segs={len(ids)}, num_unique_labels=5, num_positive_labels=0",
        "# YTID, start_seconds, end_seconds, positive_labels",
    ]
    for i, y in enumerate(ids):
        mids = ",".join(AUDIOSET_MIDS[j % 5] for j in range(i % 3 + 1))
        lines.append(f'{y}, {start:.3f}, {start + 10:.3f}, "{mids}"')
    path.write_text("\n".join(lines) + "\n")


def audioset(root: Path, balanced: int = 40, unbalanced: int = 60, evaluation: int = 10) -> tuple[Path, dict]:
    """CSVs with the `#` header lines and quoted MID lists; PANNs `audios/` (Y prefix) for balanced and eval,
    plain `audio/unbal_train/<id>.flac` for unbalanced; every 8th listed id has no audio (dead video)."""
    d = root / "AudioSet"
    d.mkdir(parents=True)
    rows = ["index,mid,display_name"] + [
        f'{i},{m},"{n}"' for i, (m, n) in enumerate(zip(AUDIOSET_MIDS, AUDIOSET_NAMES))
    ]
    (d / "class_labels_indices.csv").write_text("\n".join(rows) + "\n")
    plan = {
        "balanced_train_segments.csv": (
            [f"-b{i:03d}xyzABC" for i in range(balanced)],
            "audios/balanced_train_segments",
        ),  # noqa: E501
        "unbalanced_train_segments.csv": ([f"u{i:03d}_Yzqrst" for i in range(unbalanced)], "audio/unbal_train"),
        "eval_segments.csv": ([f"Ye{i:03d}abcdef" for i in range(evaluation)], "audios/eval_segments"),
    }
    missing = {}
    for name, (ids, folder) in plan.items():
        _segments(d / name, ids)
        missing[name] = 0
        for i, y in enumerate(ids):
            if i % 8 == 7:
                missing[name] += 1
                continue
            touch(d / folder / (f"Y{y}.wav" if folder.startswith("audios") else f"{y}.flac"))
    return d, missing
