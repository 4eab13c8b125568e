"""Evaluation orchestration: encoders x tasks -> cached embeddings -> probes -> scores, report and provenance.

    >>> run_eval(["simclr=sf_nfnet_micro:runs/x/encoder.safetensors", "random:sf_nfnet_micro", "logmel"],
    ...          ["esc50", "csv:/data/mine.csv"], data_root="/data", out="runs/eval")

Every protocol value (docs/PROTOCOL.md sections 2-4) is a keyword override (`max_epochs=20`, `seeds=(0,)`,
`window_s=...`, `max_bad_fraction=...`); unknown names are an error, and the values used are recorded.
"""

from __future__ import annotations

import dataclasses
import os
import platform
import subprocess
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

import hares
from hares.audio import FRONTEND_CONFIG
from hares.evaluate.embed import ClipPolicy, EmbeddingCache, ShardsPending, check_precision, extract
from hares.evaluate.encoders import EvalEncoder, load_encoder
from hares.evaluate.metrics import domain_averages, hares_score
from hares.evaluate.probe import ProbeConfig, targets_for, train_probe
from hares.evaluate.stats import DEFAULT_RESAMPLES, DEFAULT_SEED, FoldPredictions, TaskPredictions, check_test_targets
from hares.io import check_output_dir
from hares.schema import Float, check_overrides, fixed_fields, settable_fields

DEFAULT_MAX_BAD_FRACTION = 0.01
PROTOCOL_VERSION = 2  # docs/PROTOCOL.md; v2: the probe converges (L-BFGS linear probe, step-counted Adam budget)
PACKAGES = ("torch", "numpy", "scipy", "scikit-learn", "soundfile", "soxr", "safetensors", "timm", "matplotlib")


class BadAudioError(RuntimeError):
    """Too many clips of a split could not be decoded."""


@dataclasses.dataclass(frozen=True)
class Protocol:
    """The probe settings, the clip policy and the bad-audio tolerance a run uses."""

    probe: ProbeConfig = ProbeConfig()
    policy: ClipPolicy = ClipPolicy()
    max_bad_fraction: float = DEFAULT_MAX_BAD_FRACTION

    @classmethod
    def settings(cls) -> tuple[dict[str, Any], list[str]]:
        """({name: spec} of every overridable protocol value, [names that are recorded but fixed])."""
        specs = {**settable_fields(ProbeConfig), **settable_fields(ClipPolicy)}
        specs["max_bad_fraction"] = Float(ge=0, le=1)
        return specs, [*fixed_fields(ProbeConfig), *fixed_fields(ClipPolicy)]

    @classmethod
    def with_overrides(cls, **overrides: Any) -> Protocol:
        """The protocol with values overridden, each checked (type, range, non-empty tuples; hares.schema).

        Raises `OptionError` (a ValueError) in one line for an unknown or fixed name or a bad value."""
        specs, fixed = cls.settings()
        checked = check_overrides(overrides, specs, fixed, what="protocol setting")
        probe_names = {f.name for f in dataclasses.fields(ProbeConfig)}
        policy_names = {f.name for f in dataclasses.fields(ClipPolicy)}
        probe = ProbeConfig(**{k: v for k, v in checked.items() if k in probe_names})
        policy = ClipPolicy(**{k: v for k, v in checked.items() if k in policy_names})
        extra = {k: v for k, v in checked.items() if k not in probe_names | policy_names}
        return cls(probe, policy, **extra)

    def as_dict(self) -> dict[str, Any]:
        return {
            "version": PROTOCOL_VERSION,
            "probe": dataclasses.asdict(self.probe),
            "clip_policy": dataclasses.asdict(self.policy),
            "frontend": FRONTEND_CONFIG,
            "max_bad_fraction": self.max_bad_fraction,
            "metrics": {
                "accuracy": "top-1, clip level",
                "mAP": "mean over classes with >= 1 positive of sklearn average_precision_score",
                "score": "percent; mean over seeds of (mean over folds); std over seeds (ddof=1)",
                "hares": "mean over the 12 HARES tasks",
            },
        }


class _CacheRows:
    """Probe `Rows` over some manifest rows (and optionally some columns: one layer) of an embedding cache."""

    def __init__(self, cache: EmbeddingCache, indices: np.ndarray, columns: slice | None = None) -> None:
        self.cache, self.indices, self.columns = cache, indices, columns
        self.dim = len(range(cache.dim)[columns]) if columns is not None else cache.dim

    def __len__(self) -> int:
        return len(self.indices)

    def get(self, idx: np.ndarray) -> np.ndarray:
        rows = self.cache.take(self.indices[idx])
        return rows if self.columns is None else rows[:, self.columns]


def provenance() -> dict[str, Any]:
    """hares version and git commit, package versions, Python, platform."""
    from importlib.metadata import PackageNotFoundError, version

    packages = {}
    for name in PACKAGES:
        try:
            packages[name] = version(name)
        except PackageNotFoundError:
            packages[name] = None
    sha, dirty = None, None
    src = Path(hares.__file__).resolve().parent
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=src, capture_output=True, text=True, timeout=10)
        sha = sha.stdout.strip() or None if sha.returncode == 0 else None
        if sha:
            status = subprocess.run(["git", "status", "--porcelain", "--", "."], cwd=src, capture_output=True,
                                    text=True, timeout=10)  # fmt: skip
            dirty = bool(status.stdout.strip())
    except (OSError, subprocess.SubprocessError):
        sha = None
    return {
        "hares_version": hares.__version__,
        "git_sha": sha,
        "git_dirty": dirty,
        "packages": packages,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "created_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def _task_list(tasks: str | Sequence[Any]) -> list[Any]:
    from hares.tasks import list_tasks

    if isinstance(tasks, str):
        tasks = [t for t in tasks.split(",") if t.strip()]
    out: list[Any] = []
    for t in tasks:
        out.extend(list_tasks() if t == "all" else [t.strip() if isinstance(t, str) else t])
    if not out:
        raise ValueError("no tasks given")
    return out


def _resolve_device(device: str | None) -> torch.device:
    if device in (None, "auto"):
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def _check_bad(task: str, fold: str, split: str, indices: np.ndarray, cache: EmbeddingCache, limit: float) -> None:
    bad = [int(i) for i in indices if int(i) in cache.bad]
    if len(bad) > limit * len(indices):
        listing = "\n  ".join(cache.bad[i] for i in bad[:20])
        more = f"\n  ... and {len(bad) - 20} more" if len(bad) > 20 else ""
        where = f"{task}{'/' + fold if fold else ''} {split}"
        raise BadAudioError(
            f"{where}: {len(bad)} of {len(indices)} clips ({100 * len(bad) / len(indices):.1f}%) could not be "
            f"decoded, more than the {100 * limit:g}% allowed (max_bad_fraction):\n  {listing}{more}"
        )


def check_splits(spec: Any, clips: Sequence[Any]) -> None:
    """Raise ValueError (naming the task) unless every fold has train, valid and test clips."""
    counts: dict[str, int] = {}
    for c in clips:
        counts[c.split] = counts.get(c.split, 0) + 1
    for fold, sets in spec.splits(list(clips)):
        empty = [s for s in ("train", "valid", "test") if not sets.get(s)]
        if empty:
            where = f"{spec.name}{' fold ' + fold if fold else ''}"
            raise ValueError(
                f"{where}: no {'/'.join(empty)} clips; a task needs train, valid and test (clips per split: "
                f"{dict(sorted(counts.items()))})"
            )


def evaluate_task(
    encoder: EvalEncoder,
    spec: Any,
    clips: Sequence[Any],
    protocol: Protocol,
    cache_dir: Path,
    device: torch.device,
    batch_size: int,
    num_workers: int,
    progress: bool,
    precision: str = "fp32",
    shard_size: int = 1024,
    columns: slice | None = None,
) -> dict[str, Any]:
    """Embed one task with one encoder (cached) and run its probe(s); scores in percent.

    `columns` probes only those embedding columns (one layer of a per-layer encoder, `hares.evaluate.layers`).
    """
    from tqdm.auto import tqdm

    label = encoder.info.label
    cache = extract(encoder, clips, cache_dir, protocol.policy, batch_size=batch_size, num_workers=num_workers,
                    device=device, progress=progress, desc=f"embed {label} / {spec.name}",
                    precision=precision, shard_size=shard_size)  # fmt: skip
    classes = spec.classes(list(clips))
    index = {(c.path, c.start, c.end): i for i, c in reversed(list(enumerate(clips)))}
    folds = spec.splits(list(clips))
    cfg = protocol.probe
    bar = tqdm(total=0, desc=f"probe {label} / {spec.name}", disable=not progress)
    fold_results, fold_predictions = [], []
    base = os.path.commonpath([c.path for c in clips]) if clips else ""
    for fold, sets in folds:
        data, test_ids = {}, []
        for split in ("train", "valid", "test"):
            idx = np.array([index[(c.path, c.start, c.end)] for c in sets[split]], dtype=np.int64)
            _check_bad(spec.name, fold, split, idx, cache, protocol.max_bad_fraction)
            keep = np.array([int(i) not in cache.bad for i in idx], dtype=bool)
            idx = idx[keep]
            labels = [c.labels for c, k in zip(sets[split], keep) if k]
            data[split] = (_CacheRows(cache, idx, columns), targets_for(labels, classes, spec.multilabel))
            if split == "test":  # clip ids relative to the task's folder, so runs on other machines still pair
                test_ids = [f"{os.path.relpath(c.path, base)}|{c.start:g}|{c.end:g}" for c, k in zip(sets[split], keep)
                            if k]  # fmt: skip
        check_test_targets(f"{spec.name}{'/' + fold if fold else ''}", data["test"][1], spec.multilabel)
        bar.total += len(cfg.seeds) * cfg.progress_units(spec.probe, len(data["train"][0]))  # grid points or epochs
        bar.refresh()
        result = train_probe(data["train"], data["valid"], data["test"], kind=spec.probe, multilabel=spec.multilabel,
                             num_classes=len(classes), metric=spec.metric, cfg=cfg, device=device,
                             progress=bar.update)  # fmt: skip
        sizes = {s: len(data[s][0]) for s in data}
        logits = np.stack(result.pop("test_logits"))  # (S, N_test, C)
        fold_predictions.append(FoldPredictions(fold or "", data["test"][1].numpy(), logits, np.array(test_ids, str)))
        fold_results.append({"fold": fold, "sizes": sizes, **result})
    bar.close()
    per_seed = 100 * np.mean([[s["test"] for s in f["seeds"]] for f in fold_results], axis=0)  # (seeds,)
    return {
        "encoder": label,
        "task": spec.name,
        "domain": spec.domain,
        "metric": spec.metric,
        "score": float(per_seed.mean()),
        "std": float(per_seed.std(ddof=1)) if len(per_seed) > 1 else 0.0,
        "seed_scores": per_seed.tolist(),
        "num_classes": len(classes),
        "probe": spec.probe,
        "cache_key": cache.key,
        "precision": precision,
        "predictions": TaskPredictions(label, spec.name, spec.metric, tuple(cfg.seeds), fold_predictions),
        "bad_files": sorted(cache.bad.values()),
        "folds": [
            {
                "fold": f["fold"],
                "sizes": f["sizes"],
                "score": 100 * f["test"],
                "std": 100 * f["test_std"],
                "selected": f["seeds"],  # the chosen grid point per seed, and the validation score of every point
            }
            for f in fold_results
        ],
    }


def run_eval(
    encoders: Sequence[str | EvalEncoder],
    tasks: str | Sequence[Any],
    data_root: str | os.PathLike | None = None,
    out: str | os.PathLike | None = None,
    *,
    cache_dir: str | os.PathLike | None = None,
    device: str | None = None,
    batch_size: int = 32,
    num_workers: int = 2,
    progress: bool = True,
    precision: str = "fp32",
    shard_size: int = 1024,
    resamples: int = DEFAULT_RESAMPLES,
    stats_seed: int = DEFAULT_SEED,
    compare: Sequence[str] = (),
    protocol: Protocol | None = None,
    **overrides: Any,
) -> dict[str, Any] | None:
    """Evaluate `encoders` (specs `[LABEL=]SPEC` or encoders) on `tasks` (names, `csv:PATH`, "all").

    Writes `report.csv`, `report.md`, `report.png`, `paired.csv`, `paired.png`, `results.json` and the per-clip
    test predictions (`predictions/*.npz`) into `out` (if given) and returns the results dict. Intervals and
    paired tests use `resamples` bootstrap replicates drawn from `stats_seed`; `compare` names published reference
    rows (`paper:SF_NFNET_F0`, see `hares references`) shown beside the encoders. Embeddings are cached under
    `cache_dir` (default `$HARES_CACHE` or ~/.cache/hares/embeddings).
    `precision`: "fp32", or "bf16" / "fp16" autocast for the networks (recorded; part of the cache key).
    Under torchrun (RANK / WORLD_SIZE set) every rank extracts its share of the shards, and rank 0 probes and
    reports; the other ranks return None (see `_extract_distributed`).
    """
    from hares.evaluate.layers import evaluate_layers
    from hares.evaluate.references import get_reference
    from hares.evaluate.report import write_report
    from hares.tasks import get_task

    for ref in compare:
        get_reference(ref)  # an unknown reference fails before any work

    if protocol is not None and overrides:
        raise TypeError(f"pass protocol= or protocol overrides {sorted(overrides)}, not both")
    protocol = protocol or Protocol.with_overrides(**overrides)
    if out is not None:
        check_output_dir(out, "out")  # before any compute: a bad --out must not cost a whole evaluation
    check_precision(precision)
    rank, world = _torchrun_rank()
    dev = _resolve_device(device)
    if world > 1 and dev.type == "cuda":  # one GPU per rank, as torchrun numbers them on each node
        dev = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(dev)
    cache = Path(cache_dir or os.environ.get("HARES_CACHE") or Path.home() / ".cache" / "hares" / "embeddings")
    specs = [t if not isinstance(t, str) else get_task(t) for t in _task_list(tasks)]
    names = [s.name for s in specs]
    if len(set(names)) != len(names):
        raise ValueError(f"tasks listed twice: {sorted({n for n in names if names.count(n) > 1})}")
    manifests, task_info = {}, {}
    from hares.data.manifest import manifest_hash

    missing = []
    for spec in specs:
        try:
            clips = spec.build_manifest(data_root)
        except FileNotFoundError as e:
            missing.append(str(e))
            continue
        check_splits(spec, clips)  # before any clip is embedded
        manifests[spec.name] = clips
        counts: dict[str, int] = {}
        for c in clips:
            counts[c.split] = counts.get(c.split, 0) + 1
        task_info[spec.name] = {
            "domain": spec.domain,
            "metric": spec.metric,
            "multilabel": spec.multilabel,
            "probe": spec.probe,
            "num_classes": len(spec.classes(list(clips))),
            "folds": list(spec.folds),
            "location": str(spec.locate(data_root)),
            "manifest_hash": manifest_hash(clips),
            "num_clips": len(clips),
            "clips_per_split": dict(sorted(counts.items())),
            "manifest_report": getattr(clips, "report", {}),  # what the adapter counted, skipped, found straddling
        }

    if missing:
        raise FileNotFoundError(f"{len(missing)} task(s) have no data (see `hares tasks`):\n  " + "\n  ".join(missing))
    if world > 1:
        _extract_distributed(encoders, specs, manifests, protocol, cache, dev, batch_size, num_workers, progress,
                             precision, shard_size, rank, world)  # fmt: skip
        if rank != 0:
            return None
    results: dict[str, Any] = {
        **provenance(),
        "device": str(dev) + (f" ({torch.cuda.get_device_name(dev)})" if dev.type == "cuda" else ""),
        "protocol_version": PROTOCOL_VERSION,
        "precision": precision,
        "extraction_ranks": world,
        "protocol": protocol.as_dict(),
        "cache_dir": str(cache),
        "encoders": {},
        "tasks": task_info,
        "results": [],
    }
    labels = []
    for enc in encoders:
        encoder = load_encoder(enc) if isinstance(enc, str) else enc
        info = encoder.info
        if info.label in labels:
            raise ValueError(f"two encoders are labelled {info.label!r}; name them with LABEL=SPEC")
        labels.append(info.label)
        results["encoders"][info.label] = {**dataclasses.asdict(info), "fingerprint": info.fingerprint()}
        evaluate = evaluate_layers if getattr(encoder, "layers", None) else evaluate_task
        for spec in specs:
            results["results"].append(
                evaluate(
                    encoder,
                    spec,
                    manifests[spec.name],
                    protocol,
                    cache,
                    dev,
                    batch_size,
                    num_workers,
                    progress,
                    precision,
                    shard_size,
                )  # fmt: skip
            )
        del encoder
    predictions = {(r["encoder"], r["task"]): r.pop("predictions") for r in results["results"]}
    finish_results(results, predictions, resamples=resamples, stats_seed=stats_seed, device=dev, progress=progress)
    if out is not None:
        write_predictions(out, results, predictions)
        write_report(results, out, compare=compare)
    return results


def compute_aggregates(results: dict[str, Any]) -> dict[str, Any]:
    """Domain averages, HARES score (None without all 12 tasks) and mean over tasks, per encoder."""
    from hares.tasks import list_tasks

    benchmark = list_tasks()
    aggregates = {}
    for label in dict.fromkeys(r["encoder"] for r in results["results"]):
        rows = [r for r in results["results"] if r["encoder"] == label]
        scores = {r["task"]: r["score"] for r in rows}
        aggregates[label] = {
            "domains": domain_averages(scores, {r["task"]: r["domain"] for r in rows}),
            "hares": hares_score(scores, benchmark),
            "mean": float(np.mean(list(scores.values()))),
        }
    return aggregates


def finish_results(
    results: dict[str, Any],
    predictions: dict,
    resamples: int,
    stats_seed: int,
    device: str | torch.device = "cpu",
    progress: bool = False,
) -> None:
    """Aggregates, then intervals and paired tests (`hares.evaluate.stats`, on `device`) from the predictions."""
    from hares.evaluate.stats import compute_stats

    results["aggregates"] = compute_aggregates(results)
    compute_stats(results, predictions, resamples=resamples, seed=stats_seed, device=device, progress=progress)


def write_predictions(out: str | os.PathLike, results: dict[str, Any], predictions: dict) -> None:
    """Each (encoder, task)'s test logits, targets and clip ids to OUT/predictions/*.npz; rows record the file."""
    from hares.evaluate.stats import predictions_file, save_predictions

    for r in results["results"]:
        name = predictions_file(r["encoder"], r["task"])
        save_predictions(Path(out) / "predictions" / name, predictions[r["encoder"], r["task"]])
        r["predictions"] = f"predictions/{name}"


def _torchrun_rank() -> tuple[int, int]:
    """(RANK, WORLD_SIZE) from torchrun's environment; (0, 1) for a plain process."""
    try:
        return int(os.environ.get("RANK", "0")), int(os.environ.get("WORLD_SIZE", "1"))
    except ValueError as e:
        raise ValueError(f"RANK / WORLD_SIZE must be integers (torchrun sets them): {e}") from None


def _extract_distributed(
    encoders: Sequence[str | EvalEncoder],
    specs: Sequence[Any],
    manifests: dict[str, Any],
    protocol: Protocol,
    cache: Path,
    device: torch.device,
    batch_size: int,
    num_workers: int,
    progress: bool,
    precision: str,
    shard_size: int,
    rank: int,
    world: int,
) -> None:
    """`torchrun --nproc_per_node=N -m hares eval ...`: every rank embeds shards rank, rank + N, ... of every
    (encoder, task); after a barrier rank 0 marks the cache entries done and goes on to probe (the caches are then
    complete, so its normal pass recomputes nothing). A gloo group carries only the barriers, so it works on CPU
    and GPU alike; its timeout is a day, since ranks wait for the slowest one."""
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=1))
    for enc in encoders:
        encoder = load_encoder(enc) if isinstance(enc, str) else enc
        for spec in specs:
            label = encoder.info.label
            kw = dict(batch_size=batch_size, num_workers=num_workers, device=device, shard_size=shard_size,
                      precision=precision)  # fmt: skip
            try:
                extract(encoder, manifests[spec.name], cache, protocol.policy, progress=progress and rank == 0,
                        desc=f"embed {label} / {spec.name} (rank {rank}/{world})", rank=rank, world_size=world,
                        **kw)  # fmt: skip
            except ShardsPending:
                pass
            dist.barrier()
            if rank == 0:
                extract(encoder, manifests[spec.name], cache, protocol.policy, progress=False, **kw)
        del encoder
    dist.barrier()
