"""Scene-embedding extraction with a content-addressed, sharded, resumable on-disk cache (PROTOCOL section 2).

Clip policy: the whole clip is embedded at once up to 10.24 s; a longer clip is cut into consecutive 10.24 s
windows (`hares.audio.eval_windows`) and the window embeddings are averaged.

Batching never mixes lengths: windows are bucketed by their number of STFT frames and trimmed to exactly the
samples those frames read (the frontend never looks past them), so a batch holds equal-length inputs and no
clip's embedding depends on what it was batched with. Clips are processed in order of duration, so buckets fill.
Decoding runs in DataLoader workers; on CPU the workers also compute the log-mels (the frontend is per window,
so this changes nothing but the speed), on GPU the frontend runs on the device with the network.

Cache layout, `<cache_root>/<key>/`:
- `meta.json`   what the key hashes (encoder fingerprint, frontend, clip policy, manifest hash), written first;
- `clips.jsonl` the task manifest; `order.npy` the processing order (manifest indices sorted by duration, also
  kept in `<cache_root>/orders/<manifest hash>.npy` so other encoders skip reading the headers again);
- `shard-00000.npy` (n, D) float16 embeddings of `order[0:n]`, then `shard-00000.json` (its bad clips),
  each written atomically; a shard is finished only once its `.json` exists, so a killed run resumes at
  the first unfinished shard and never recomputes a finished one;
- `.done`, written last, with the bad-clip list. Reads memory-map the shards (`np.load(mmap_mode="r")`).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass
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
from hares.io import atomic_path, write_json

CACHE_VERSION = 1


@dataclass(frozen=True)
class ClipPolicy:
    """PROTOCOL section 2: whole clip up to `window_s`, else consecutive windows, embeddings averaged."""

    sample_rate: int = SAMPLE_RATE
    window_s: float = EVAL_WINDOW_S
    min_last_s: float = EVAL_MIN_LAST_S
    pooling: str = "mean_over_windows"


def cache_key(encoder_fingerprint: str, policy: ClipPolicy, clips_hash: str) -> str:
    """sha256 over the encoder (weights + config + frontend), the clip policy and the manifest hash."""
    blob = json.dumps(
        {
            "version": CACHE_VERSION,
            "encoder": encoder_fingerprint,
            "frontend": FRONTEND_CONFIG,
            "policy": asdict(policy),
            "manifest": clips_hash,
        },
        sort_keys=True,
    )
    return hashlib.sha256(blob.encode()).hexdigest()


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
) -> EmbeddingCache:
    """Embed every clip with `encoder` (waveforms (B, N) -> (B, D)) into the cache, reusing finished shards.

    With `world_size` > 1 each rank computes shards `rank, rank + world_size, ...`; every rank returns the
    cache once all shards exist (call it again on rank 0 after a barrier).
    """
    info = encoder.info
    key = cache_key(info.fingerprint(), policy, manifest_hash(clips))
    path = Path(cache_root) / key
    if (path / ".done").exists():
        return EmbeddingCache(path)
    path.mkdir(parents=True, exist_ok=True)
    if not (path / "meta.json").exists():
        meta = {
            "version": CACHE_VERSION,
            "encoder": {"label": info.label, "spec": info.spec, "fingerprint": info.fingerprint(), **asdict(info)},
            "frontend": FRONTEND_CONFIG,
            "policy": asdict(policy),
            "manifest_hash": manifest_hash(clips),
            "num_clips": len(clips),
            "embed_dim": int(encoder.embed_dim),
            "shard_size": shard_size,
            "dtype": "float16",
        }
        write_json(path / "meta.json", meta)
    meta = json.loads((path / "meta.json").read_text())
    shard_size = int(meta["shard_size"])  # a resumed run keeps the layout it started with
    if not (path / "clips.jsonl").exists():
        write_manifest(clips, path / "clips.jsonl")
    if (path / "order.npy").exists():
        order = np.load(path / "order.npy")
    else:  # reading every file header is slow for big tasks: shared by all encoders of one manifest
        shared = Path(cache_root) / "orders" / f"{meta['manifest_hash']}.npy"
        order = np.load(shared) if shared.exists() else processing_order(clips)
        if not shared.exists():
            _save_npy(shared, order)
        _save_npy(path / "order.npy", order)

    num_shards = max(1, math.ceil(len(clips) / shard_size))
    mine = [s for s in range(num_shards) if s % world_size == rank]
    todo = [s for s in mine if not (path / f"shard-{s:05d}.json").exists()]
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
        )

    if not all((path / f"shard-{s:05d}.json").exists() for s in range(num_shards)):
        raise RuntimeError(f"{path}: shards of other ranks are not finished yet")
    bad: dict[str, str] = {}
    for s in range(num_shards):
        bad.update(json.loads((path / f"shard-{s:05d}.json").read_text())["bad"])
    if not (path / ".done").exists():
        write_json(path / ".done", {"num_shards": num_shards, "num_clips": len(clips), "bad": bad})
    return EmbeddingCache(path)


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
) -> None:
    from tqdm.auto import tqdm

    encoder = encoder.to(device).eval()
    dim = int(encoder.embed_dim)
    # Log-mel encoders on CPU: the decode workers compute the frontend. Waveform encoders (frontend None) get
    # the windows themselves.
    frontend = encoder.frontend if torch.device(device).type == "cpu" else None
    loader = torch.utils.data.DataLoader(
        _DecodeDataset(clips, positions, order, policy, frontend),
        batch_size=None,
        shuffle=False,
        num_workers=num_workers,
        prefetch_factor=4 if num_workers else None,
    )
    bar = tqdm(total=total, initial=total - len(positions), desc=desc, unit="clip", disable=not progress)
    state: dict = {}

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

    def run(bucket: list[tuple[int, torch.Tensor]]) -> None:
        rows = [r for r, _ in bucket]
        x = torch.stack([w for _, w in bucket]).to(device)  # (B, N) waveforms or (B, 1, T, F) log-mels, equal sizes
        emb = (encoder.embed_logmel(x) if frontend is not None else encoder(x)).double().cpu().numpy()  # (B, D)
        np.add.at(state["sums"], rows, emb)
        np.add.at(state["counts"], rows, 1)

    def flush() -> None:
        for bucket in state["buckets"].values():
            for i in range(0, len(bucket), batch_size):
                run(bucket[i : i + batch_size])
        state["buckets"].clear()

    def finish() -> None:
        flush()
        counts = np.maximum(state["counts"], 1)[:, None]
        emb = (state["sums"] / counts).astype(np.float16)  # bad clips stay zero
        if not np.isfinite(emb).all():
            raise FloatingPointError(f"{path}: shard {state['shard']} has non-finite embeddings (float16 overflow?)")
        shard = state["shard"]
        _save_npy(path / f"shard-{shard:05d}.npy", emb)
        write_json(path / f"shard-{shard:05d}.json", {"num_clips": len(emb), "bad": state["bad"]})

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
