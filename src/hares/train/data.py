"""Pre-training data: the training dataset, its sampler and the shard stream; random crops decoded in workers.

What the clips are comes from `hares.data` (one data layer for training and evaluation): `open_source` reads a
folder, a clip CSV / JSONL manifest, an AudioSet folder or WebDataset shards into `Clip`s (`hares.data.sources`),
`hares.data.shards` writes and reads the shards, and `hares.audio.load_audio` is the one decoder.

Exact resumption: a step's batch depends only on (seed, step, rank). Map-style data is ordered by a seeded
permutation per epoch (`StepSampler`): step s takes global batch s of the epoch, rank r its r-th slice. Every
random crop is drawn from `np.random.default_rng([seed, epoch, index])`, so workers and restarts draw the same
numbers. Undecodable files are replaced (map-style: by a seeded random other clip; shards: by the previous good
clip of the stream), counted, and a run of `max_bad` failures in a row stops with an error naming the files.
"""

from __future__ import annotations

import math
import os
import warnings
from collections.abc import Iterator, Sequence

import numpy as np
import torch
from torch.utils.data import Dataset, IterableDataset, get_worker_info

from hares.audio import SAMPLE_RATE, AudioError, load_audio, random_crop
from hares.data.manifest import Clip
from hares.data.shards import decode_member, read_shard, write_shards
from hares.data.sources import DataError, Source, detect_format, open_source

__all__ = [
    "ClipDataset", "DataError", "ShardStream", "Source", "StepSampler", "balanced_weights", "collate",
    "detect_format", "open_source", "write_shards",
]  # fmt: skip


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
        items: Sequence[Clip],
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
                wav = load_audio(os.fsdecode(self.paths[index]), SAMPLE_RATE, float(start), float(end))
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


def balanced_weights(items: Sequence[Clip], label_names: Sequence[str]) -> np.ndarray:
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
                samples = read_shard(self.source.shards[mine[si]])[offset::stride]
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
                wav = decode_member(name, data)
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
