"""Pre-training data: any audio collection -> random crops, decoded in DataLoader workers.

Sources (`open_source`): a folder scanned recursively, a CSV (`path[,labels][,start,end]`) or hares JSONL
manifest, the AudioSet layout (segment CSVs + one file per YouTube id + `class_labels_indices.csv`), LibriSpeech
(`hares.data.librispeech`: `LibriSpeech/<subset>/<speaker>/<chapter>/*.flac`, speaker labels), and WebDataset
tar shards (`{key}.flac` + `{key}.json`, written by `write_shards`, read with the stdlib `tarfile`).

Exact resumption: a step's batch depends only on (seed, step, rank). Map-style data is ordered by a seeded
permutation per epoch (`StepSampler`): step s takes global batch s of the epoch, rank r its r-th slice. Every
random crop is drawn from `np.random.default_rng([seed, epoch, index])`, so workers and restarts draw the same
numbers. Undecodable files are replaced (map-style: by a seeded random other clip; shards: by the previous good
clip of the stream), counted, and a run of `max_bad` failures in a row stops with an error naming the files.
"""

from __future__ import annotations

import csv
import io
import itertools
import json
import math
import os
import tarfile
import warnings
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from hares.audio import SAMPLE_RATE, AudioError, load_audio, random_crop
from hares.io import atomic_path, write_json

AUDIO_EXTS = (".wav", ".flac", ".ogg", ".mp3", ".aiff", ".aif", ".opus", ".m4a")
AUDIOSET_SUBSETS = {
    "balanced_train": "balanced_train_segments.csv",
    "unbalanced_train": "unbalanced_train_segments.csv",
    "eval": "eval_segments.csv",
}
SHARD_INDEX = "shards.json"
MAX_MEMBER_BYTES = 256 * 2**20  # one clip in a shard: 10 min of 48 kHz stereo WAV is ~115 MB
MAX_META_BYTES = 2**20
SHARD_AUDIO_EXTS = ("flac", "wav", "ogg", "mp3")


class DataError(ValueError):
    """A dataset that cannot be used (empty, malformed, or no decodable clip)."""


@dataclass(frozen=True)
class Item:
    """One training clip: a file, its labels (possibly none) and an optional segment in seconds (end 0 = to the end)."""

    path: str
    labels: tuple[str, ...] = ()
    start: float = 0.0
    end: float = 0.0


@dataclass
class Source:
    """A scanned collection: map-style `items`, or `shards` for streaming; `label_names` fixes the target order."""

    kind: str
    items: list[Item]
    label_names: list[str]
    shards: list[str]
    shard_counts: list[int]
    missing: int = 0  # AudioSet rows whose audio file is absent

    def __len__(self) -> int:
        return sum(self.shard_counts) if self.shards else len(self.items)


# ---------------------------------------------------------------- sources


def scan_folder(root: str | os.PathLike) -> list[Item]:
    """Every audio file below `root`; its label (used by supervised training only) is its top sub-folder's name."""
    root = Path(root)
    files = sorted(p for p in root.rglob("*") if p.suffix.lower() in AUDIO_EXTS and p.is_file())
    if not files:
        raise DataError(f"{root}: no audio files ({', '.join(AUDIO_EXTS)}) found in this folder or below")
    return [Item(str(p), (p.relative_to(root).parts[0],) if p.parent != root else ()) for p in files]


def _split_labels(text: str) -> tuple[str, ...]:
    sep = ";" if ";" in text else ","
    return tuple(x.strip() for x in text.split(sep) if x.strip())


def read_csv_manifest(path: str | os.PathLike) -> list[Item]:
    """CSV with a header: `path` (relative to the CSV's folder or absolute), optional `labels`/`label`
    (several labels separated by `;`), optional `start`/`end` in seconds. Other columns are ignored."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        from hares.data.manifest import not_utf8

        raise DataError(str(not_utf8(path, e))) from None
    with io.StringIO(text, newline="") as f:
        reader = csv.DictReader(f)
        cols = reader.fieldnames or []
        if "path" not in cols:
            raise DataError(f"{path}: a pre-training CSV manifest needs a 'path' column (found {cols})")
        label_col = "labels" if "labels" in cols else ("label" if "label" in cols else None)
        items = []
        for i, row in enumerate(reader, 2):
            if not (row.get("path") or "").strip():
                raise DataError(f"{path}:{i}: empty 'path'")
            p = Path(row["path"].strip())
            try:
                start, end = float(row.get("start") or 0), float(row.get("end") or 0)
            except ValueError as e:
                raise DataError(f"{path}:{i}: bad start/end ({e})") from e
            labels = _split_labels(row[label_col] or "") if label_col else ()
            items.append(Item(str(p if p.is_absolute() else path.parent / p), labels, start, end))
    if not items:
        raise DataError(f"{path}: the manifest has no rows")
    return items


def read_jsonl_manifest(path: str | os.PathLike) -> list[Item]:
    from hares.data.manifest import read_manifest, resolve

    clips = read_manifest(path)
    if not clips:
        raise DataError(f"{path}: the manifest has no rows")
    return [Item(resolve(c.path, Path(path).parent), tuple(c.labels), c.start, c.end) for c in clips]


def _find(root: Path, name: str) -> Path | None:
    direct = root / name
    if direct.is_file():
        return direct
    return next(iter(sorted(root.rglob(name))), None)


def read_audioset(root: str | os.PathLike, subsets: Sequence[str] = ("balanced_train", "unbalanced_train")):
    """AudioSet as distributed by the scrapers: segment CSVs (`# ` header lines, `YTID, start, end, "mids"`),
    `class_labels_indices.csv` (index,mid,display_name) and one audio file per segment named `{YTID}.*` or
    `Y{YTID}.*` (PANNs) anywhere below `root`. Rows whose audio is missing are counted, not fatal."""
    root = Path(root)
    index_csv = _find(root, "class_labels_indices.csv")
    if index_csv is None:
        raise DataError(f"{root}: no class_labels_indices.csv (AudioSet layout)")
    with open(index_csv, newline="") as f:
        rows = sorted(csv.DictReader(f), key=lambda r: int(r["index"]))
    mids = [r["mid"] for r in rows]
    audio = {}
    for p in sorted(root.rglob("*")):
        if p.suffix.lower() in AUDIO_EXTS:
            audio.setdefault(p.stem, p)
    items, missing = [], 0
    for subset in subsets:
        if subset not in AUDIOSET_SUBSETS:
            raise DataError(f"unknown AudioSet subset {subset!r}; choose from {sorted(AUDIOSET_SUBSETS)}")
        seg_csv = _find(root, AUDIOSET_SUBSETS[subset])
        if seg_csv is None:
            continue
        with open(seg_csv, newline="") as f:
            for row in csv.reader((ln for ln in f if not ln.startswith("#")), skipinitialspace=True):
                if len(row) < 4:
                    continue
                ytid = row[0]
                p = audio.get(ytid) or audio.get("Y" + ytid)
                if p is None:
                    missing += 1
                    continue
                items.append(Item(str(p), tuple(x for x in row[3].split(",") if x)))
    if not items:
        raise DataError(f"{root}: no AudioSet segment of {list(subsets)} has an audio file ({missing} rows missing)")
    return items, mids, missing


def _shard_list(path: Path) -> list[Path]:
    if path.is_file() and path.suffix == ".tar":
        return [path]
    if path.is_file():  # a text file listing shards, one per line
        return [Path(ln.strip()) for ln in path.read_text().splitlines() if ln.strip()]
    return sorted(path.glob("*.tar"))


def detect_format(path: str | os.PathLike) -> str:
    path = Path(path)
    if not path.exists():
        raise FileNotFoundError(f"{path}: no such data folder or manifest")
    if path.is_file():
        if path.suffix == ".tar" or path.suffix == ".txt":
            return "shards"
        return "manifest"
    if (path / "class_labels_indices.csv").is_file():
        return "audioset"
    if (path / SHARD_INDEX).is_file() or any(path.glob("*.tar")):
        return "shards"
    from hares.data.librispeech import is_librispeech

    return "librispeech" if is_librispeech(path) else "folder"


def open_source(
    path: str | os.PathLike, data_format: str = "auto", audioset_subsets=None, librispeech_subsets=None
) -> Source:
    """Scan `path` in the given layout (auto-detected by default)."""
    fmt = detect_format(path) if data_format == "auto" else data_format
    path = Path(path)
    if fmt == "shards":
        shards = _shard_list(path)
        if not shards:
            raise DataError(f"{path}: no .tar shards")
        index = path / SHARD_INDEX if path.is_dir() else None
        if index is not None and index.is_file():
            meta = json.loads(index.read_text())
            counts = {s["name"]: s["count"] for s in meta["shards"]}
            label_names = list(meta.get("label_names", []))
        else:
            counts, label_names = {}, []
        shard_counts = [counts.get(s.name) or _count_members(s) for s in shards]
        return Source("shards", [], label_names, [str(s) for s in shards], shard_counts)
    missing = 0
    if fmt == "folder":
        items = scan_folder(path)
        label_names = sorted({lab for it in items for lab in it.labels})
    elif fmt == "manifest":
        items = read_jsonl_manifest(path) if path.suffix in (".jsonl", ".json") else read_csv_manifest(path)
        label_names = sorted({lab for it in items for lab in it.labels})
    elif fmt == "audioset":
        items, label_names, missing = read_audioset(path, audioset_subsets or ("balanced_train", "unbalanced_train"))
    elif fmt == "librispeech":
        from hares.data.librispeech import TRAIN_960, LibriSpeechError, read_librispeech

        try:
            clips = read_librispeech(path, librispeech_subsets or TRAIN_960)
        except LibriSpeechError as e:
            raise DataError(str(e)) from e
        items = [Item(c.path, c.labels) for c in clips]
        label_names = sorted({c.labels[0] for c in clips})
    else:
        raise DataError(f"unknown data format {fmt!r}")
    return Source(fmt, items, label_names, [], [], missing)


# ---------------------------------------------------------------- map-style clips


def _decode(item: Item) -> np.ndarray:
    wav = load_audio(item.path, SAMPLE_RATE)
    if item.start or item.end:
        a = int(round(item.start * SAMPLE_RATE))
        b = int(round(item.end * SAMPLE_RATE)) if item.end else wav.shape[0]
        wav = wav[a:b]
        if wav.shape[0] == 0:
            raise AudioError(f"{item.path}: segment [{item.start}, {item.end}] s is empty")
    return wav


def _multi_hot(labels: Sequence[str], index: dict[str, int]) -> np.ndarray:
    y = np.zeros(len(index), dtype=np.float32)
    for lab in labels:
        if lab in index:
            y[index[lab]] = 1.0
    return y


class ClipDataset(Dataset):
    """`dataset[(index, epoch)]` -> {"wav": (views, crop) float32, "target": (C,), "bad": int}.

    The clip table is held in a few numpy arrays (paths as fixed-width bytes, labels as CSR index arrays), not a
    list of Python objects: DataLoader workers touching millions of objects would copy them page by page through
    reference counting (pytorch/pytorch#13246), numpy arrays stay shared.
    """

    def __init__(
        self,
        items: Sequence[Item],
        label_names: Sequence[str],
        crop_samples: int,
        views: int,
        seed: int,
        max_bad: int = 50,
    ) -> None:
        self.crop, self.views, self.seed, self.max_bad = crop_samples, views, seed, max_bad
        self.num_classes = len(label_names)
        index = {name: i for i, name in enumerate(label_names)}
        self.paths = np.array([os.fsencode(it.path) for it in items])  # (N,) fixed-width bytes
        self.segments = np.array([(it.start, it.end) for it in items], dtype=np.float64).reshape(-1, 2)  # (N, 2)
        ids = [[index[lab] for lab in it.labels if lab in index] for it in items]
        self.label_offsets = np.cumsum([0] + [len(x) for x in ids]).astype(np.int64)  # (N + 1,)
        self.label_ids = np.array([i for x in ids for i in x], dtype=np.int32)

    def __len__(self) -> int:
        return len(self.paths)

    def _target(self, index: int) -> np.ndarray:
        y = np.zeros(self.num_classes, dtype=np.float32)
        y[self.label_ids[self.label_offsets[index] : self.label_offsets[index + 1]]] = 1.0
        return y

    def __getitem__(self, key: tuple[int, int]) -> dict:
        index, epoch = key
        rng = np.random.default_rng([self.seed, epoch, index])
        errors = []
        while len(errors) < self.max_bad:
            start, end = self.segments[index]
            try:
                wav = _decode(Item(os.fsdecode(self.paths[index]), (), float(start), float(end)))
                break
            except (AudioError, OSError) as e:
                errors.append(str(e))
                warnings.warn(f"skipping undecodable clip: {e}", stacklevel=2)
                index = int(rng.integers(len(self)))
        else:
            raise DataError(
                f"{self.max_bad} clips in a row could not be decoded (is the whole dataset bad?); last errors: "
                + " | ".join(errors[-3:])
            )
        crops = np.stack([random_crop(wav, self.crop, rng) for _ in range(self.views)])  # (V, N)
        return {"wav": torch.from_numpy(crops), "target": torch.from_numpy(self._target(index)), "bad": len(errors)}


def collate(samples: list[dict]) -> dict[str, torch.Tensor]:
    return {
        "wav": torch.stack([s["wav"] for s in samples]),  # (B, V, N)
        "target": torch.stack([s["target"] for s in samples]),  # (B, C)
        "bad": torch.tensor(sum(int(s["bad"]) for s in samples)),
    }


def balanced_weights(items: Sequence[Item], label_names: Sequence[str]) -> np.ndarray:
    """PSLA / AST sample weights: sum over a clip's labels of 1000 / (label count + 0.01), normalised to sum 1."""
    index = {n: i for i, n in enumerate(label_names)}
    counts = np.zeros(len(index))
    for it in items:
        for lab in it.labels:
            if lab in index:
                counts[index[lab]] += 1
    label_w = 1000.0 / (counts + 0.01)
    w = np.array([sum(label_w[index[lab]] for lab in it.labels if lab in index) for it in items]) + 1e-6
    return w / w.sum()


class StepSampler:
    """Batch sampler: step s -> this rank's slice of the global batch s, as [(index, epoch), ...].

    An epoch is one seeded permutation of the clips (or, with `weights`, a seeded draw of len(items) clips with
    replacement, the same on every rank: docs/PRETRAINING.md section 7). If the data has fewer clips than a global
    batch, an epoch concatenates several permutations. Infinite; starts at `start_step`.
    """

    def __init__(
        self,
        n: int,
        global_batch: int,
        rank: int = 0,
        world: int = 1,
        seed: int = 0,
        start_step: int = 0,
        weights: np.ndarray | None = None,
    ) -> None:
        if global_batch % world:
            raise ValueError(f"global batch {global_batch} is not divisible by the world size {world}")
        self.n, self.global_batch, self.rank, self.world, self.seed = n, global_batch, rank, world, seed
        self.start_step, self.weights = start_step, weights
        self.repeats = math.ceil(global_batch / n)
        self.batches_per_epoch = self.repeats * n // global_batch

    def position(self, step: int) -> dict[str, int]:
        epoch, batch = divmod(step, self.batches_per_epoch)
        return {"epoch": epoch, "batch_in_epoch": batch, "batches_per_epoch": self.batches_per_epoch}

    def order(self, epoch: int) -> np.ndarray:
        rng = np.random.default_rng([self.seed, epoch, 1])
        if self.weights is not None:
            return rng.choice(self.n, size=self.repeats * self.n, replace=True, p=self.weights)
        return np.concatenate([rng.permutation(self.n) for _ in range(self.repeats)])

    def __iter__(self) -> Iterator[list[tuple[int, int]]]:
        per_rank = self.global_batch // self.world
        step, cached = self.start_step, (-1, None)
        while True:
            epoch, b = divmod(step, self.batches_per_epoch)
            if cached[0] != epoch:
                cached = (epoch, self.order(epoch))
            batch = cached[1][b * self.global_batch : (b + 1) * self.global_batch]
            yield [(int(i), epoch) for i in batch[self.rank * per_rank : (self.rank + 1) * per_rank]]
            step += 1


# ---------------------------------------------------------------- WebDataset shards


def _encode_flac(wav: np.ndarray, sample_rate: int) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, wav, sample_rate, format="FLAC", subtype="PCM_16")
    return buf.getvalue()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.mtime, info.mode = len(data), 0, 0o644
    tar.addfile(info, io.BytesIO(data))


def write_shards(source: Source, out_dir: str | os.PathLike, shard_size: int = 512, progress: bool = False) -> dict:
    """Decode every clip of a map-style `source` to 16 kHz mono and write WebDataset shards.

    Members `{key}.flac` (PCM 16) + `{key}.json` ({"labels": [...], "source": path}); shards
    `shard-000000.tar`... are written atomically, then `shards.json` (counts, labels, skipped files).
    """
    from tqdm import tqdm

    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    shards: list[dict] = []
    skipped: list[str] = []

    def encoded() -> Iterator[tuple[Item, bytes]]:
        for item in tqdm(source.items, disable=not progress, desc="shards", unit="clip"):
            try:
                yield item, _encode_flac(_decode(item), SAMPLE_RATE)
            except (AudioError, OSError) as e:
                skipped.append(str(e))

    stream, key = encoded(), 0
    while (first := next(stream, None)) is not None:
        name, count = f"shard-{len(shards):06d}.tar", 0
        with atomic_path(out_dir / name) as tmp, tarfile.open(tmp, "w") as tar:
            for item, flac in itertools.chain([first], itertools.islice(stream, shard_size - 1)):
                k = f"{key:09d}"
                _add_member(tar, f"{k}.flac", flac)
                _add_member(tar, f"{k}.json", json.dumps({"labels": list(item.labels), "source": item.path}).encode())
                key, count = key + 1, count + 1
        shards.append({"name": name, "count": count})
    if not shards:
        raise DataError(f"none of the {len(source.items)} clips could be decoded; first error: {skipped[:1]}")
    summary = {
        "shards": shards,
        "num_samples": key,
        "skipped": len(skipped),
        "skipped_examples": skipped[:20],
        "label_names": source.label_names,
        "sample_rate": SAMPLE_RATE,
        "format": "webdataset: {key}.flac (PCM_16 mono) + {key}.json",
    }
    write_json(out_dir / SHARD_INDEX, summary)
    return summary


def _count_members(shard: str | os.PathLike) -> int:
    with tarfile.open(shard) as tar:
        return sum(1 for m in tar.getmembers() if m.name.endswith(".flac"))


def _read_shard(shard: str) -> list[tuple[str, bytes | int, dict]]:
    """(key, flac bytes, json) for each sample of a shard, in file order.

    Sizes come from the (untrusted) tar headers: a member over `MAX_MEMBER_BYTES` (`MAX_META_BYTES` for its
    JSON) is not read; its sample keeps its place in the stream with the size instead of the bytes, and the
    decoder reports it as a bad clip."""
    samples: dict[str, dict] = {}
    with tarfile.open(shard) as tar:
        for m in tar:
            if not m.isfile():
                continue
            key, _, ext = m.name.rpartition(".")
            if ext not in SHARD_AUDIO_EXTS and ext != "json":
                continue  # never used: never read
            limit = MAX_META_BYTES if ext == "json" else MAX_MEMBER_BYTES
            samples.setdefault(key, {})[ext] = m.size if m.size > limit else tar.extractfile(m).read()
    out = []
    for key in sorted(samples):
        s = samples[key]
        audio_ext = next((e for e in SHARD_AUDIO_EXTS if e in s), None)
        if audio_ext is None:
            continue
        name = f"{shard}:{key}.{audio_ext}"
        if isinstance(s.get("json"), int):  # oversized metadata: the sample is bad, its place is kept
            out.append((f"{shard}:{key}.json", s["json"], {}))
            continue
        meta = json.loads(s["json"]) if "json" in s else {}
        out.append((name, s[audio_ext], meta))
    return out


def _decode_bytes(name: str, data: bytes | int) -> np.ndarray:
    if isinstance(data, int):  # `_read_shard` left an oversized member unread
        raise AudioError(f"{name}: a {data:,d}-byte member, over the per-member limit (MAX_MEMBER_BYTES); not read")
    try:
        wav, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as e:
        raise AudioError(f"{name}: cannot decode ({type(e).__name__}: {e})") from e
    if wav.shape[0] == 0 or not np.isfinite(wav).all():
        raise AudioError(f"{name}: empty or non-finite audio")
    wav = wav.mean(axis=1)
    if sr != SAMPLE_RATE:
        import soxr

        wav = soxr.resample(wav, sr, SAMPLE_RATE, quality="HQ")
    return np.ascontiguousarray(wav, dtype=np.float32)


class ShardStream(IterableDataset):
    """Batches from WebDataset shards; each (rank, virtual worker) stream reads its own shards.

    Step s of rank r is built by virtual worker v = s % num_workers, so a restart at any step (with the same
    num_workers) reproduces the same batches: the stream skips, without decoding, the samples its earlier steps
    consumed. Each stream shuffles its shard order and the samples inside a shard with (seed, epoch, stream).
    Use with `DataLoader(batch_size=None)`.
    """

    def __init__(
        self,
        source: Source,
        crop_samples: int,
        views: int,
        per_rank_batch: int,
        seed: int,
        rank: int = 0,
        world: int = 1,
        num_workers: int = 0,
        start_step: int = 0,
        max_bad: int = 50,
    ) -> None:
        self.source, self.crop, self.views, self.batch, self.seed = source, crop_samples, views, per_rank_batch, seed
        self.rank, self.world, self.nw, self.start_step, self.max_bad = (
            rank,
            world,
            max(1, num_workers),
            start_step,
            max_bad,
        )
        self.label_index = {name: i for i, name in enumerate(source.label_names)}

    def position(self, step: int) -> dict[str, object]:
        """Where each of this rank's virtual-worker streams stands after `step` steps (batches consumed)."""
        done = [max(0, (step - v + self.nw - 1) // self.nw) for v in range(self.nw)]
        return {"batches_per_stream": done, "per_rank_batch": self.batch}

    def _stream_plan(self, stream: int) -> tuple[list[int], int]:
        """Shard indices of this stream and the sample stride inside each shard (when shards < streams)."""
        n_streams = self.world * self.nw
        shards = list(range(len(self.source.shards)))
        if len(shards) >= n_streams:
            return shards[stream::n_streams], 1
        return shards, n_streams

    def _samples(self, stream: int, skip: int) -> Iterator[tuple[str, bytes, dict, np.random.Generator]]:
        mine, stride = self._stream_plan(stream)
        offset = stream if stride > 1 else 0
        per_shard = [len(range(offset, self.source.shard_counts[i], stride)) for i in mine]
        epoch_len = sum(per_shard)
        if epoch_len == 0:
            raise DataError(f"shard stream {stream} of {self.world * self.nw} has no samples; write more/larger shards")
        epoch, skip = divmod(skip, epoch_len)
        while True:
            rng = np.random.default_rng([self.seed, epoch, stream, 2])
            for si in rng.permutation(len(mine)):
                if skip >= per_shard[si]:
                    skip -= per_shard[si]
                    continue
                samples = _read_shard(self.source.shards[mine[si]])[offset::stride]
                order = np.random.default_rng([self.seed, epoch, stream, 3, int(si)]).permutation(len(samples))
                for j in order[skip:]:
                    name, data, meta = samples[j]
                    yield name, data, meta, np.random.default_rng([self.seed, epoch, stream, 4, int(si), int(j)])
                skip = 0
            epoch += 1

    def __iter__(self) -> Iterator[dict[str, torch.Tensor]]:
        info = get_worker_info()
        worker, n_loader_workers = (info.id, info.num_workers) if info is not None else (0, 1)
        if n_loader_workers != self.nw and not (info is None and self.nw == 1):
            raise ValueError(f"ShardStream built for {self.nw} workers runs under {n_loader_workers}")
        v = (self.start_step + worker) % self.nw  # the virtual worker of this worker's first step
        stream = self.rank * self.nw + v
        done_batches = max(0, (self.start_step - v + self.nw - 1) // self.nw)
        last_good: tuple[np.ndarray, dict] | None = None
        bad_in_a_row, errors = 0, []
        batch: list[dict] = []
        for name, data, meta, rng in self._samples(stream, done_batches * self.batch):
            try:
                wav = _decode_bytes(name, data)
                last_good, bad_in_a_row, bad = (wav, meta), 0, 0
            except AudioError as e:
                bad_in_a_row, bad = bad_in_a_row + 1, 1
                errors.append(str(e))
                warnings.warn(f"skipping undecodable clip: {e}", stacklevel=2)
                if bad_in_a_row >= self.max_bad:
                    raise DataError(f"{bad_in_a_row} shard samples in a row could not be decoded: {errors[-3:]}") from e
                if last_good is None:  # nothing to stand in yet: read on (the only case that shifts the stream)
                    continue
                wav, meta = last_good
            crops = np.stack([random_crop(wav, self.crop, rng) for _ in range(self.views)])
            target = _multi_hot(meta.get("labels", []), self.label_index)
            batch.append({"wav": torch.from_numpy(crops), "target": torch.from_numpy(target), "bad": bad})
            if len(batch) == self.batch:
                yield collate(batch)
                batch = []
