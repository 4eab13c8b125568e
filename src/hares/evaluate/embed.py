"""Scene-embedding extraction with a content-addressed, sharded, resumable on-disk cache (docs/PROTOCOL.md section 2).

Clip policy: the whole clip is embedded at once up to 10.24 s; a longer clip is cut into consecutive 10.24 s
windows (`hares.audio.eval_windows`) and the window embeddings are averaged.

Precision: `precision="fp32"` (default) runs the network in float32; "bf16" / "fp16" run it under
`torch.autocast` (the frontend always stays float32: its log floor is 1e-5). Reduced precision changes the
embeddings, so it is part of the cache key (`compute_settings`) and of `meta.json`.

Devices: on CPU the decoding workers also compute the log-mels (the frontend is per window, so this changes
nothing but the speed), and the main process only runs the network. On a GPU the workers decode, the main
process stacks each bucket into pinned memory, copies it with `non_blocking=True`, and the frontend and network
run on the device; the device-to-host copy of a batch's embeddings is collected only after the next batch has
been queued, so the host prepares batch k+1 while the device computes batch k. Waveform encoders (`frontend`
None, contract I1) get waveforms on every device.

Ranks: `extract(..., rank=r, world_size=w)` computes shards r, r + w, ... (torchrun: `hares.evaluate.run`
reads RANK / WORLD_SIZE / LOCAL_RANK); each shard's `.json` names the rank that wrote it.

Batching never mixes lengths: windows are bucketed by their number of STFT frames and trimmed to exactly the
samples those frames read (the frontend never looks past them), so a batch holds equal-length inputs and no
clip's embedding depends on what it was batched with beyond float32 rounding (kernels sum in an order that
depends on the batch size, which moves ~0.1% of float16 values by one step: the batch size and device type are
part of the cache key). Clips are processed in order of duration, so buckets fill.

Cache layout, `<cache_root>/<key>/`:
- `meta.json`   what the key hashes (encoder fingerprint, frontend, clip policy, manifest hash, the files'
  identities, batch size and device type), written first, with `identities.npy` ((N, 2) size, mtime_ns);
- `clips.jsonl` the task manifest; `order.npy` the processing order (manifest indices sorted by duration, also
  kept in `<cache_root>/orders/<manifest hash>.npy` so other encoders skip reading the headers again);
- `shard-00000.npy` (n, D) float16 embeddings of `order[0:n]`, then `shard-00000.json` (its bad clips),
  each written atomically; a shard is finished only once its `.json` exists, so a killed run resumes at
  the first unfinished shard and never recomputes a finished one;
- `.done`, written last, with the bad-clip list. Reads memory-map the shards (`np.load(mmap_mode="r")`).
When audio files change on disk the key changes: only the shards holding changed clips are recomputed, the rest
are taken over from the entry it replaces, which is then deleted (`hares.evaluate.cache_files`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from hares.audio import (
    EVAL_MIN_LAST_S,
    EVAL_WINDOW_S,
    FRONTEND_CONFIG,
    HOP_LENGTH,
    SAMPLE_RATE,
    WIN_LENGTH,
    eval_windows,
    load_audio,
    num_frames,
)
from hares.data.manifest import Clip, manifest_hash, write_manifest
from hares.evaluate.cache_files import (
    adopt_shards,
    file_identities,
    identities_hash,
    previous_entry,
    record_entry,
)
from hares.io import atomic_path, write_json
from hares.schema import Float, OptionError

CACHE_VERSION = 2  # 2: file identities and compute settings in the key
PRECISIONS = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class ShardsPending(RuntimeError):
    """This rank's shards are done, other ranks' are not (yet)."""


@dataclass(frozen=True)
class ClipPolicy:
    """docs/PROTOCOL.md section 2: whole clip up to `window_s`, else consecutive windows, embeddings averaged."""

    # the frontend's input rate and the pooling are what the code does: recorded, not settable
    sample_rate: int = field(default=SAMPLE_RATE, metadata={"fixed": True})
    window_s: float = field(default=EVAL_WINDOW_S, metadata={"spec": Float(ge=0.1, le=3600)})
    min_last_s: float = field(default=EVAL_MIN_LAST_S, metadata={"spec": Float(ge=0.03, le=3600)})
    pooling: str = field(default="mean_over_windows", metadata={"fixed": True})

    def __post_init__(self) -> None:
        if self.min_last_s > self.window_s:
            raise OptionError(f"min_last_s ({self.min_last_s}) must not exceed window_s ({self.window_s})")


def cache_key(
    encoder_fingerprint: str,
    policy: ClipPolicy,
    clips_hash: str,
    files_hash: str | None = None,
    compute: dict | None = None,
) -> str:
    """sha256 over the encoder (weights + config + frontend), the clip policy, the manifest hash, the files'
    identities (`cache_files.file_identities`) and the compute settings that change float results (`compute`:
    batch size, device type; float32 kernels sum in a batch- and device-dependent order)."""
    blob = json.dumps(
        {
            "version": CACHE_VERSION,
            "encoder": encoder_fingerprint,
            "frontend": FRONTEND_CONFIG,
            "policy": asdict(policy),
            "manifest": clips_hash,
            "files": files_hash,
            "compute": compute or {},
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


def check_precision(precision: str) -> str:
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r}: choose from {', '.join(PRECISIONS)}")
    return precision


def compute_settings(batch_size: int, device: str | torch.device, precision: str = "fp32") -> dict:
    """The settings of a run that change embeddings (part of the cache key): batch size and device type in their
    last float16 bits, the precision (bf16 / fp16 autocast) well beyond."""
    return {"batch_size": int(batch_size), "device": torch.device(device).type, "precision": check_precision(precision)}


def cache_entry(
    encoder: torch.nn.Module,
    clips: Sequence[Clip],
    cache_root: str | os.PathLike,
    policy: ClipPolicy = ClipPolicy(),
    batch_size: int = 32,
    device: str | torch.device = "cpu",
    precision: str = "fp32",
) -> Path:
    """The folder `extract` fills for these arguments (finished once it holds `.done`); stats every file."""
    identities = identities_hash(file_identities(clips))
    compute = compute_settings(batch_size, device, precision)
    return Path(cache_root) / cache_key(encoder.info.fingerprint(), policy, manifest_hash(clips), identities, compute)


def load_clip(clip: Clip, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """Decode a clip (or its start/end segment) to float32 mono at `sample_rate` (`hares.audio.load_audio`)."""
    return load_audio(clip.path, sample_rate, clip.start, clip.end)


def frame_exact(wav: np.ndarray) -> np.ndarray:
    """Trim a window (>= 400 samples) to the samples its STFT frames read: 400 + (T - 1) * 160."""
    return wav[: WIN_LENGTH + (num_frames(wav.shape[-1]) - 1) * HOP_LENGTH]


class _DecodeDataset(torch.utils.data.Dataset):
    """Position i -> (i, [windows], error): waveforms (N,), or log-mels (1, T, F) when given a frontend."""

    def __init__(
        self,
        clips: Sequence[Clip],
        positions: Sequence[int],
        order: np.ndarray,
        policy: ClipPolicy,
        frontend: torch.nn.Module | None = None,
    ) -> None:
        self.clips, self.positions, self.order, self.policy = clips, list(positions), order, policy
        self.frontend = frontend

    def __len__(self) -> int:
        return len(self.positions)

    def __getitem__(self, i: int) -> tuple[int, list[torch.Tensor] | None, str | None]:
        pos = self.positions[i]
        clip = self.clips[int(self.order[pos])]
        try:
            wav = load_clip(clip, self.policy.sample_rate)
            windows = eval_windows(wav, self.policy.sample_rate, self.policy.window_s, self.policy.min_last_s)
            out = [torch.from_numpy(frame_exact(w).copy()) for w in windows]
            if self.frontend is not None:
                with torch.no_grad():
                    out = [self.frontend(w[None])[0] for w in out]  # (1, T, F) each
            return pos, out, None
        except Exception as e:  # any unreadable clip is skipped and reported, never fatal here
            return pos, None, f"{type(e).__name__}: {e}"


def _duration(clip: Clip) -> float:
    if clip.end:
        return clip.end - clip.start
    try:
        info = sf.info(clip.path)
        return info.frames / info.samplerate - clip.start
    except Exception:  # unreadable: sorted first, reported as bad when decoded
        return 0.0


def processing_order(clips: Sequence[Clip], threads: int = 8) -> np.ndarray:
    """Manifest indices sorted by duration (stable), read from file headers."""
    with ThreadPoolExecutor(threads) as pool:
        durations = np.fromiter(pool.map(_duration, clips), dtype=np.float64, count=len(clips))
    return np.argsort(durations, kind="stable").astype(np.int64)


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp, open(tmp, "wb") as f:
        np.save(f, array)


class EmbeddingCache:
    """A finished cache entry, read through memory maps: `take(manifest_indices) -> (n, D)` float16."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.path = Path(path)
        if not (self.path / ".done").exists():
            raise FileNotFoundError(f"{self.path}: embedding cache is incomplete (no .done marker)")
        self.meta = json.loads((self.path / "meta.json").read_text())
        done = json.loads((self.path / ".done").read_text())
        self.bad: dict[int, str] = {int(k): v for k, v in done["bad"].items()}
        self.order = np.load(self.path / "order.npy")
        self.inverse = np.empty_like(self.order)
        self.inverse[self.order] = np.arange(len(self.order))
        self.shard_size = int(self.meta["shard_size"])
        self.shards = [np.load(self.path / f"shard-{s:05d}.npy", mmap_mode="r") for s in range(done["num_shards"])]
        self.dim = int(self.meta["embed_dim"])

    def __len__(self) -> int:
        return len(self.order)

    @property
    def key(self) -> str:
        return self.path.name

    def take(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """Embeddings (n, D) float16 of manifest rows `indices`, gathered shard by shard from the memory maps."""
        pos = self.inverse[np.asarray(indices, dtype=np.int64)]
        out = np.empty((len(pos), self.dim), dtype=np.float16)
        shard = pos // self.shard_size
        for s in np.unique(shard):
            sel = np.nonzero(shard == s)[0]
            rows = pos[sel] - s * self.shard_size
            srt = np.argsort(rows, kind="stable")
            out[sel[srt]] = self.shards[s][rows[srt]]
        return out


def extract(
    encoder: torch.nn.Module,
    clips: Sequence[Clip],
    cache_root: str | os.PathLike,
    policy: ClipPolicy = ClipPolicy(),
    batch_size: int = 32,
    num_workers: int = 2,
    shard_size: int = 1024,
    device: str | torch.device = "cpu",
    progress: bool = True,
    desc: str = "embed",
    rank: int = 0,
    world_size: int = 1,
    precision: str = "fp32",
) -> EmbeddingCache:
    """Embed every clip with `encoder` (waveforms (B, N) -> (B, D)) into the cache, reusing finished shards.

    With `world_size` > 1 each rank computes shards `rank, rank + world_size, ...`; every rank returns the
    cache once all shards exist, else raises `ShardsPending` (call it again on rank 0 after a barrier).
    `precision`: "fp32", or "bf16" / "fp16" autocast for the network (part of the cache key).
    """
    info = encoder.info
    identities = file_identities(clips)  # the cache never serves embeddings of files that changed since
    compute = compute_settings(batch_size, device, precision)
    base_key = cache_key(info.fingerprint(), policy, manifest_hash(clips), None, compute)
    key = cache_key(info.fingerprint(), policy, manifest_hash(clips), identities_hash(identities), compute)
    path = Path(cache_root) / key
    if (path / ".done").exists():
        return EmbeddingCache(path)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "meta.json").exists():
        _save_npy(path / "identities.npy", identities)
        meta = {
            "version": CACHE_VERSION,
            "encoder": {"label": info.label, "spec": info.spec, "fingerprint": info.fingerprint(), **asdict(info)},
            "frontend": FRONTEND_CONFIG,
            "policy": asdict(policy),
            "manifest_hash": manifest_hash(clips),
            "files_hash": identities_hash(identities),
            "compute": compute,
            "base_key": base_key,
            "num_clips": len(clips),
            "embed_dim": int(encoder.embed_dim),
            "shard_size": shard_size,
            "dtype": "float16",
            "precision": precision,
        }
        write_json(path / "meta.json", meta)
    meta = json.loads((path / "meta.json").read_text())
    shard_size = int(meta["shard_size"])  # a resumed run keeps the layout it started with
    if not (path / "clips.jsonl").exists():
        write_manifest(clips, path / "clips.jsonl")
    if (path / "order.npy").exists():
        order = np.load(path / "order.npy")
    else:  # reading every file header is slow for big tasks: shared by all encoders of one manifest
        shared = Path(cache_root) / "orders" / f"{meta['manifest_hash'][:32]}-{meta['files_hash'][:32]}.npy"
        order = np.load(shared) if shared.exists() else processing_order(clips)
        if not shared.exists():
            _save_npy(shared, order)
        _save_npy(path / "order.npy", order)

    num_shards = max(1, math.ceil(len(clips) / shard_size))
    mine = [s for s in range(num_shards) if s % world_size == rank]
    todo = [s for s in mine if not (path / f"shard-{s:05d}.json").exists()]
    donor = previous_entry(cache_root, base_key, key)
    if donor is not None and todo:  # files changed since the last run: reuse the shards they do not touch
        adopted = set(adopt_shards(path, donor, order, identities, shard_size, todo))
        todo = [s for s in todo if s not in adopted]
    positions = [p for s in todo for p in range(s * shard_size, min((s + 1) * shard_size, len(clips)))]
    if positions:
        _run_shards(
            encoder,
            clips,
            order,
            policy,
            path,
            positions,
            shard_size,
            batch_size,
            num_workers,
            device,
            progress,
            desc,
            total=len(clips) if world_size == 1 else len(positions),
            rank=rank,
            precision=precision,
        )

    if not all((path / f"shard-{s:05d}.json").exists() for s in range(num_shards)):
        raise ShardsPending(f"{path}: shards of other ranks are not finished yet")
    bad: dict[str, str] = {}
    for s in range(num_shards):
        bad.update(json.loads((path / f"shard-{s:05d}.json").read_text())["bad"])
    if not (path / ".done").exists():
        write_json(path / ".done", {"num_shards": num_shards, "num_clips": len(clips), "bad": bad})
    if rank == 0:
        record_entry(cache_root, base_key, key)  # and delete the entry this one replaces
    return EmbeddingCache(path)


def _frontend_in_workers(encoder: torch.nn.Module, device: torch.device) -> bool:
    """Log-mel encoders on CPU: the decoding workers compute the frontend; elsewhere it runs on the device."""
    return device.type == "cpu" and getattr(encoder, "frontend", None) is not None


def _run_shards(
    encoder: torch.nn.Module,
    clips: Sequence[Clip],
    order: np.ndarray,
    policy: ClipPolicy,
    path: Path,
    positions: list[int],
    shard_size: int,
    batch_size: int,
    num_workers: int,
    device: str | torch.device,
    progress: bool,
    desc: str,
    total: int,
    rank: int = 0,
    precision: str = "fp32",
) -> None:
    from tqdm.auto import tqdm

    device = torch.device(device)
    encoder = encoder.to(device).eval()
    dim = int(encoder.embed_dim)
    logmel_in_workers = _frontend_in_workers(encoder, device)
    pinned = device.type == "cuda"
    autocast = PRECISIONS[check_precision(precision)]
    loader = torch.utils.data.DataLoader(
        _DecodeDataset(clips, positions, order, policy, encoder.frontend if logmel_in_workers else None),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        prefetch_factor=4 if num_workers else None,
    )
    bar = tqdm(total=total, initial=total - len(positions), desc=desc, unit="clip", disable=not progress)
    state: dict = {}
    pending: list[tuple[list[int], torch.Tensor]] = []  # (rows, embeddings still on the device)

    def start(shard: int) -> None:
        n = min(shard_size, len(clips) - shard * shard_size)
        state.update(
            shard=shard,
            sums=np.zeros((n, dim), np.float64),
            counts=np.zeros(n, np.int64),
            bad={},
            buckets={},
            remaining=n,
        )

    def collect() -> None:
        """Add the embeddings of queued batches (waits for the device only here)."""
        while pending:
            rows, emb = pending.pop(0)
            emb = emb.cpu().numpy().astype(np.float64)  # (B, D)
            np.add.at(state["sums"], rows, emb)
            np.add.at(state["counts"], rows, 1)

    def run(bucket: list[tuple[int, torch.Tensor]]) -> None:
        rows = [r for r, _ in bucket]
        shape = (len(bucket), *bucket[0][1].shape)  # (B, N) waveforms or (B, 1, T, F) log-mels, equal sizes
        x = torch.stack([w for _, w in bucket], out=torch.empty(shape, pin_memory=pinned))
        x = x.to(device, non_blocking=pinned)  # pinned: an asynchronous copy, the host goes on
        with torch.inference_mode(), torch.autocast(device.type, dtype=autocast, enabled=autocast is not None):
            emb = encoder.embed_logmel(x) if logmel_in_workers else encoder(x)  # (B, D)
            emb = emb.float()
        collect()  # the previous batch: on a GPU it finished while this one was queued
        pending.append((rows, emb))

    def flush() -> None:
        for bucket in state["buckets"].values():
            for i in range(0, len(bucket), batch_size):
                run(bucket[i : i + batch_size])
        state["buckets"].clear()
        collect()

    def finish() -> None:
        flush()
        counts = np.maximum(state["counts"], 1)[:, None]
        emb = (state["sums"] / counts).astype(np.float16)  # bad clips stay zero
        if not np.isfinite(emb).all():
            raise FloatingPointError(f"{path}: shard {state['shard']} has non-finite embeddings (float16 overflow?)")
        shard = state["shard"]
        _save_npy(path / f"shard-{shard:05d}.npy", emb)
        write_json(path / f"shard-{shard:05d}.json", {"num_clips": len(emb), "bad": state["bad"], "rank": rank})

    for pos, windows, error in loader:
        shard, row = divmod(pos, shard_size)
        if state.get("shard") != shard:
            start(shard)
        if error is not None:
            state["bad"][str(int(order[pos]))] = f"{clips[int(order[pos])].path}: {error}"
        else:
            for w in windows:
                bucket = state["buckets"].setdefault(tuple(w.shape), [])
                bucket.append((row, w))
                if len(bucket) == batch_size:
                    run(bucket)
                    bucket.clear()
            if sum(map(len, state["buckets"].values())) > 4 * batch_size:
                flush()  # many lengths (speech): bounded memory, and the progress bar stays honest
        state["remaining"] -= 1
        bar.update(1)
        if state["remaining"] == 0:
            finish()
            state.clear()
    bar.close()
