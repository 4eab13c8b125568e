"""hares-synth: a deterministic synthetic three-domain suite (six tasks) plus an unlabelled pre-training pool.

Each task is written as 16-bit wav files and a CSV manifest (`path,label,split[,group]`; multi-label tasks use
`labels` joined by `;`), so it runs through the custom-task path exactly like user data. Everything is drawn from
per-clip seeds (`SeedSequence([seed, task, index])`): the same seed gives the same bytes, in any order or process.

| task | domain | classes | per class train/valid/test | metric |
|---|---|---|---|---|
| scenes | environment | 8 textures | 20 / 6 / 12 | accuracy |
| events | environment | 10 event types, 1-3 per clip | 240 / 80 / 160 clips | mAP |
| keywords | speech | 10 words, 5 anagram pairs (dog/god); unseen speakers in valid/test | 20 / 6 / 12 | accuracy |
| speakers | speech | 20 voices saying varied (pseudo-)words | 12 / 4 / 8 | accuracy |
| pitch | music | 36 semitones (MIDI 48-83), random family | 8 / 3 / 5 | accuracy |
| instrument | music | 8 families at random pitch | 20 / 6 / 12 | accuracy |

Nuisances, drawn independently of the label: random onset, loudness (peak -30..-1 dBFS; pool clips -12..-1, levelled
like a curated pre-training corpus so that waveform example mixing keeps both clips audible), a channel colouring
(spectral tilt and two +-10 dB bumps), coloured background noise (5-30 dB SNR), a reverb-like exponential decay
(p=0.6) and, for scenes, keywords, speakers, pitch and instrument, a distractor of another kind 4-14 dB down (p=0.5).
The pool (`pool.csv`, 2 s clips) holds four 0.5 s renditions of one source per clip, with independent nuisances.
"""

from __future__ import annotations

import csv
import json
import os
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy import signal

from hares.data import synth_sources as src
from hares.io import atomic_path, write_json

VERSION = 5
SR = src.SR
CLIP_SECONDS = 1.0
POOL_SECONDS = 2.0
SPLITS = ("train", "valid", "test")
MIDI_LOW = 48


@dataclass(frozen=True)
class SynthTask:
    """One hares-synth task: its classes and split sizes (per class, or in clips for the multi-label task)."""

    name: str
    domain: str
    classes: tuple[str, ...]
    sizes: tuple[int, int, int]
    multi_label: bool = False

    @property
    def metric(self) -> str:
        return "mAP" if self.multi_label else "accuracy"


TASKS = (
    SynthTask("scenes", "environment", src.SCENES, (20, 6, 12)),
    SynthTask("events", "environment", src.EVENTS, (240, 80, 160), multi_label=True),
    SynthTask("keywords", "speech", tuple(src.KEYWORDS), (20, 6, 12)),
    SynthTask("speakers", "speech", tuple(f"voice{i:02d}" for i in range(20)), (12, 4, 8)),
    SynthTask("pitch", "music", tuple(f"midi{MIDI_LOW + i}" for i in range(36)), (8, 3, 5)),
    SynthTask("instrument", "music", tuple(src.INSTRUMENTS), (20, 6, 12)),
)
QUICK_SIZES = {"events": (6, 3, 3)}  # --quick: one clip per class and split, and these


def task_sizes(task: SynthTask, quick: bool) -> tuple[int, int, int]:
    return QUICK_SIZES.get(task.name, (1, 1, 1)) if quick else task.sizes


# ---------------------------------------------------------------------------------------------- nuisances
def _reverb(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """Convolve with exponentially decaying noise (RT60 0.1-0.8 s), mixed wet/dry."""
    rt60 = rng.uniform(0.1, 0.8)
    n_ir = int(min(rt60, 0.6) * SR)
    t = np.arange(n_ir) / SR
    ir = rng.standard_normal(n_ir) * np.exp(-6.9 * t / rt60)
    ir = signal.sosfilt(signal.butter(1, rng.uniform(2000, 7000), fs=SR, output="sos"), ir)
    wet = signal.fftconvolve(x, ir)[: len(x)]
    wet *= np.sqrt(np.mean(x**2) / (np.mean(wet**2) + 1e-12))
    mix = rng.uniform(0.2, 0.7)
    return ((1 - mix) * x + mix * wet).astype(np.float32)


def place(rng: np.random.Generator, x: np.ndarray, n: int) -> np.ndarray:
    """Put source `x` at a random onset inside n samples (cropping it if longer)."""
    out = np.zeros(n, np.float32)
    if len(x) >= n:
        start = int(rng.integers(0, len(x) - n + 1))
        return x[start : start + n].astype(np.float32)
    start = int(rng.integers(0, n - len(x) + 1))
    out[start : start + len(x)] = x
    return out


DISTRACTORS = {  # interfering sources per task: never of the kind the task labels
    "scenes": ("speech", "music"),
    "keywords": ("music", "events"),
    "speakers": ("music", "events"),
    "pitch": ("speech", "events"),
    "instrument": ("speech", "events"),
}


def distractor(rng: np.random.Generator, kinds: tuple[str, ...], n: int) -> np.ndarray:
    """An interfering sound (another voice's pseudo-word, a note, or an event) at a random onset, unit RMS."""
    kind = str(rng.choice(kinds))
    if kind == "speech":
        x = src.speak(rng, src.random_word(rng), src.random_voice(rng))
    elif kind == "music":
        x = src.note(rng, str(rng.choice(list(src.INSTRUMENTS))), rng.uniform(40, 84), rng.uniform(0.3, 0.8))
    else:
        x = src.event(rng, str(rng.choice([e for e in src.EVENTS if e != "speech"])))
    x = place(rng, x, n)
    return x / (np.sqrt(np.mean(x**2)) + 1e-9)


def interfere(rng: np.random.Generator, x: np.ndarray, kinds: tuple[str, ...], p: float = 0.5) -> np.ndarray:
    """With probability p, add a distractor 4 to 14 dB below the foreground (by RMS)."""
    if rng.uniform() >= p:
        return x
    rms = np.sqrt(np.mean(x**2)) + 1e-9
    return x + distractor(rng, kinds, len(x)) * rms * 10 ** (-rng.uniform(4, 14) / 20)


def channel(rng: np.random.Generator, x: np.ndarray) -> np.ndarray:
    """A random microphone/room colouring: a spectral tilt (+-4 dB/octave about 1 kHz) and two +-10 dB bumps."""
    spec = np.fft.rfft(x)
    octaves = np.log2(np.maximum(np.fft.rfftfreq(len(x), 1 / SR), 50.0) / 1000.0)
    gain_db = rng.uniform(-4, 4) * octaves
    for _ in range(2):
        centre, width = rng.uniform(-3, 2.9), rng.uniform(0.3, 1.5)  # octaves about 1 kHz
        gain_db = gain_db + rng.uniform(-10, 10) * np.exp(-0.5 * ((octaves - centre) / width) ** 2)
    return np.fft.irfft(spec * 10 ** (gain_db / 20), len(x)).astype(np.float32)


TASK_PEAK_DB = (-30.0, -1.0)  # loudness of task clips: a 29 dB range, as recordings come
# Pool clips are levelled like a curated pre-training corpus: example mixing adds a partner at lam <= 0.4 in the
# waveform domain, and over a 29 dB range the louder clip of a pair drowns the other, so the positive pair no longer
# shares its content (six-task mean at 600 steps: 41.3 unlevelled, 45.7 levelled; BENCHMARKS.md, "Embedded demo").
POOL_PEAK_DB = (-12.0, -1.0)
POOL_RENDITIONS = 4  # renditions of one source per pool clip (0.5 s each in 2 s)


def finish(
    rng: np.random.Generator,
    x: np.ndarray,
    snr_db: tuple[float, float] = (5.0, 30.0),
    peak_db: tuple[float, float] = TASK_PEAK_DB,
) -> np.ndarray:
    """Add the label-independent nuisances: reverb (p=0.6), a random channel colouring, coloured noise at a random
    SNR, random loudness (peak level in dBFS drawn from `peak_db`)."""
    if rng.uniform() < 0.6:
        x = _reverb(rng, x)
    x = channel(rng, x)
    power = np.mean(x**2) + 1e-12
    noise = src.colored_noise(rng, len(x), rng.uniform(0, 6))
    x = x + noise * np.sqrt(power / 10 ** (rng.uniform(*snr_db) / 10))
    peak = rng.uniform(*peak_db)
    return (x / (np.abs(x).max() + 1e-9) * 10 ** (peak / 20)).astype(np.float32)


# ---------------------------------------------------------------------------------------------- task clips
def _voices(seed: int, tag: str, count: int) -> list[dict]:
    rng = np.random.default_rng([seed, 7919, sum(map(ord, tag)), count])
    return [src.random_voice(rng) for _ in range(count)]


KEYWORD_SPEAKERS = {"train": 40, "valid": 12, "test": 20}


def _clip(task: str, label: tuple[str, ...], split: str, group: str, rng: np.random.Generator, seed: int, n: int):
    """Audio of one task clip whose label (and, for keywords, speaker group) is already decided."""
    if task == "scenes":
        x, snr = src.scene(rng, label[0], n), (10.0, 30.0)
    elif task == "events":
        bed = src.scene(rng, str(rng.choice(src.SCENES)), n) * 10 ** (rng.uniform(-30, -15) / 20)
        x = bed
        for name in label:
            x = x + place(rng, src.event(rng, name), n) * 10 ** (rng.uniform(-8, 0) / 20)
        snr = (15.0, 35.0)
    elif task == "keywords":
        k = int(group[len(split) :])
        voice = src.jitter_voice(rng, _voices(seed, "kw" + split, KEYWORD_SPEAKERS[split])[k])
        x, snr = place(rng, src.speak(rng, src.KEYWORDS[label[0]], voice), n), (5.0, 30.0)
    elif task == "speakers":
        voice = src.jitter_voice(rng, _voices(seed, "speakers", 20)[int(label[0][5:])])
        word = src.KEYWORDS[str(rng.choice(list(src.KEYWORDS)))] if rng.uniform() < 0.3 else src.random_word(rng)
        x, snr = place(rng, src.speak(rng, word, voice), n), (5.0, 30.0)
    elif task == "pitch":
        family = str(rng.choice([f for f in src.INSTRUMENTS if f != "percussion"]))
        midi = int(label[0][4:]) + rng.uniform(-0.25, 0.25)
        x, snr = place(rng, src.note(rng, family, midi, rng.uniform(0.4, 1.0)), n), (5.0, 30.0)
    elif task == "instrument":
        midi = rng.uniform(40, 84)
        x, snr = place(rng, src.note(rng, label[0], midi, rng.uniform(0.4, 1.0)), n), (5.0, 30.0)
    else:
        raise KeyError(f"unknown hares-synth task {task!r}")
    if task in DISTRACTORS:
        x = interfere(rng, x, DISTRACTORS[task])
    return finish(rng, x, snr)


def _labels(task: SynthTask, seed: int, quick: bool) -> list[tuple[tuple[str, ...], str]]:
    """(labels, split) of every clip: balanced per class (single-label) or per event type (multi-label)."""
    sizes = task_sizes(task, quick)
    rows: list[tuple[tuple[str, ...], str]] = []
    if not task.multi_label:
        for split, per_class in zip(SPLITS, sizes, strict=True):
            rows += [((c,), split) for c in task.classes for _ in range(per_class)]
        return rows
    rng = np.random.default_rng([seed, 104729, len(task.classes)])
    for split, count in zip(SPLITS, sizes, strict=True):
        ks = [1 + i % 3 for i in range(count)]  # one third each of 1, 2 and 3 events
        deck: list[str] = []
        for k in ks:  # deal event types from shuffled decks, so each type appears equally often
            chosen: list[str] = []
            while len(chosen) < k:
                if not deck:
                    deck = list(rng.permutation(task.classes))
                name = deck.pop()
                if name in chosen:
                    deck.insert(0, name)
                    continue
                chosen.append(name)
            rows.append((tuple(sorted(chosen)), split))
    return rows


# ---------------------------------------------------------------------------------------------- pool
def pool_clip(rng: np.random.Generator, n: int, renditions: int = POOL_RENDITIONS) -> np.ndarray:
    """An unlabelled clip: `renditions` renditions of one source side by side, each with its own onset, loudness,
    channel, noise, reverb and distractor. A voice saying a word again, an instrument playing a note again, one
    kind of scene or the same kinds of events. With four 0.5 s renditions in 2 s, two random 0.5 s crops almost
    never lie inside the same rendition, so a positive pair shares what the source is and not how it was recorded,
    and every crop is mostly source, not the silence around it."""
    part = n // renditions
    kind = rng.choice(["speech", "music", "scene", "events"], p=[0.3, 0.3, 0.2, 0.2])
    if kind == "scene":
        name = str(rng.choice(src.SCENES))
        make = lambda: finish(rng, src.scene(rng, name, part), (10.0, 30.0), POOL_PEAK_DB)  # noqa: E731
    elif kind == "events":
        names = [str(e) for e in rng.choice(src.EVENTS, size=int(rng.integers(1, 4)), replace=False)]

        def make() -> np.ndarray:
            x = src.scene(rng, str(rng.choice(src.SCENES)), part) * 10 ** (rng.uniform(-30, -15) / 20)
            for name in names:
                x = x + place(rng, src.event(rng, name), part) * 10 ** (rng.uniform(-8, 0) / 20)
            return finish(rng, x, (15.0, 35.0), POOL_PEAK_DB)
    else:
        if kind == "speech":
            voice = src.random_voice(rng)
            word = src.KEYWORDS[str(rng.choice(list(src.KEYWORDS)))] if rng.uniform() < 0.5 else src.random_word(rng)
            source = lambda: src.speak(rng, word, src.jitter_voice(rng, voice))  # noqa: E731
            kinds = ("music", "events")
        else:
            family, midi = str(rng.choice(list(src.INSTRUMENTS))), rng.uniform(40, 84)
            source = lambda: src.note(rng, family, midi + rng.uniform(-0.2, 0.2), rng.uniform(0.4, 0.9))  # noqa: E731
            kinds = ("speech", "events")

        def make() -> np.ndarray:
            return finish(rng, interfere(rng, place(rng, source(), part), kinds), (5.0, 30.0), POOL_PEAK_DB)

    return np.concatenate([make() for _ in range(renditions)] + [np.zeros(n - renditions * part, np.float32)])


# ---------------------------------------------------------------------------------------------- writing
def _write_wav(path: Path, wav: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        sf.write(str(tmp), np.clip(wav, -1, 1), SR, subtype="PCM_16", format="WAV")


def _make(job: tuple) -> None:
    """Worker: synthesise and write one clip (a top-level function so process pools can pickle it)."""
    kind, index, seed, labels, split, group, path = job
    rng = np.random.default_rng([seed, sum(map(ord, kind)), index])
    if kind == "pool":
        wav = pool_clip(rng, int(POOL_SECONDS * SR))
    else:
        wav = _clip(kind, labels, split, group, rng, seed, int(CLIP_SECONDS * SR))
    _write_wav(Path(path), wav)


def _group(task: str, split: str, index: int, seed: int) -> str:
    """The keyword task's speaker (valid and test speakers are unseen in train); "" for the other tasks."""
    if task != "keywords":
        return ""
    rng = np.random.default_rng([seed, 31337, index])
    return f"{split}{int(rng.integers(KEYWORD_SPEAKERS[split])):02d}"


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with atomic_path(path) as tmp, open(tmp, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def dataset_dir(root: str | os.PathLike, seed: int, quick: bool = False) -> Path:
    return Path(root) / f"hares-synth-v{VERSION}-seed{seed}{'-quick' if quick else ''}"


def generate(
    root: str | os.PathLike,
    seed: int = 0,
    quick: bool = False,
    pool_size: int | None = None,
    workers: int | None = None,
    log: Callable[[str], None] = print,
) -> Path:
    """Write hares-synth under `root` (or reuse a finished copy for the same version, seed and sizes).

    Returns the dataset folder holding `<task>.csv` for the six tasks and `pool.csv` for pre-training.
    """
    pool_size = (32 if quick else 1200) if pool_size is None else pool_size
    out = dataset_dir(root, seed, quick)
    meta = {"version": VERSION, "seed": seed, "quick": quick, "pool_size": pool_size, "sample_rate": SR}
    meta["tasks"] = {t.name: {"sizes": task_sizes(t, quick), "classes": list(t.classes)} for t in TASKS}
    done = out / "hares-synth.json"
    if done.is_file() and json.loads(done.read_text()) == json.loads(json.dumps(meta)):
        log(f"hares-synth: reusing {out}")
        return out

    jobs: list[tuple] = []
    manifests: dict[str, tuple[list[str], list[list[str]]]] = {}
    for task in TASKS:
        rows = []
        for i, (labels, split) in enumerate(_labels(task, seed, quick)):
            rel = f"{task.name}/{split}/{i:05d}.wav"
            group = _group(task.name, split, i, seed)
            jobs.append((task.name, i, seed, labels, split, group, str(out / rel)))
            rows.append([rel, ";".join(labels), split, group, task.domain])
        header = ["path", "labels" if task.multi_label else "label", "split", "group", "domain"]
        manifests[task.name] = (header, rows)
    pool_rows = [[f"pool/{i:05d}.wav"] for i in range(pool_size)]
    jobs += [("pool", i, seed, (), "train", "", str(out / r[0])) for i, r in enumerate(pool_rows)]
    manifests["pool"] = (["path"], pool_rows)

    start = time.time()
    workers = workers if workers is not None else min(2, os.cpu_count() or 1)
    log(f"hares-synth: writing {len(jobs)} clips to {out} with {workers} worker(s)")
    if workers > 1:
        with ProcessPoolExecutor(workers) as ex:
            for k, _ in enumerate(ex.map(_make, jobs, chunksize=16), 1):
                if k % 500 == 0:
                    log(f"  {k}/{len(jobs)} clips ({time.time() - start:.0f} s)")
    else:
        for k, job in enumerate(jobs, 1):
            _make(job)
            if k % 500 == 0:
                log(f"  {k}/{len(jobs)} clips ({time.time() - start:.0f} s)")
    for name, (header, rows) in manifests.items():
        _write_csv(out / f"{name}.csv", header, rows)
    write_json(done, meta)
    log(f"hares-synth: {len(jobs)} clips in {time.time() - start:.1f} s")
    return out
