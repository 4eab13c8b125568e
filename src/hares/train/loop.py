"""The pre-training loop: one function that reads top to bottom (nanoGPT style), the same on 1 CPU and N GPUs.

Single process:  `hares pretrain --preset debug --data DIR --out runs/x`
Many processes:  `torchrun --nproc_per_node=8 -m hares pretrain --preset paper-simclr --data DIR --out runs/x`
DDP starts from torchrun's environment (NCCL on GPU, gloo on CPU); each rank reads its own slice of every global
batch; rank 0 logs and writes checkpoints. Randomness that shapes a step (crops, mixing) is a function of
(seed, step, rank), and the global RNGs are checkpointed too, so `resume=True` continues exactly where the run
stopped. The loop never branches on the method: objectives return {"loss": ..., **logs}.

The run folder is owned: a new run refuses a folder that holds one (`resume=True` continues it, `overwrite=True`
replaces it); resuming refuses any change of a setting the run depends on (every config field except the few in
`RESUME_MAY_CHANGE`, so fields added later are covered) and any change of the data (the clip list's fingerprint
in run.json), listing what changed. Metric rows are appended one line at a time; a torn last line left by a kill
is dropped when the run resumes.
"""

from __future__ import annotations

import hashlib
import json
import os
import platform
import time
import warnings
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import DataLoader

from hares.audio import SAMPLE_RATE, num_frames
from hares.data.sources import Source, open_source
from hares.io import check_output_dir, write_json, write_text
from hares.models import check_model_config, create_model, save_checkpoint
from hares.train import dist
from hares.train.checkpoint import (
    RunFolderError,
    capture_rng,
    claim_run_folder,
    latest_checkpoint,
    load_training_state,
    save_training_state,
    saved_run_config,
)
from hares.train.config import PretrainConfig
from hares.train.data import ClipDataset, ShardStream, StepSampler, balanced_weights, collate
from hares.train.objectives import build_objective

ENCODER_FILE = "encoder.safetensors"
# The only settings a resumed run may change: how long it runs and how it logs, where, with what tolerance.
# Every other field (data, objective, network, batch, optimiser, seed, ... and fields added later) must match.
# `num_workers` shapes the data order of shard streams, so it must match for sharded data.
RESUME_MAY_CHANGE = (
    "steps", "out", "resume", "overwrite", "progress", "log_every", "ckpt_every", "keep_checkpoints", "device",
    "max_bad_in_a_row", "num_workers",
)  # fmt: skip


def step_seed(seed: int, step: int, rank: int) -> int:
    """The seed of the on-device randomness (example mixing, BYOL-A augmentations) of one step on one rank."""
    return int(np.random.default_rng([seed, step, rank, 5]).integers(2**62))


def lr_at(step: int, cfg: PretrainConfig) -> float:
    """Linear warm-up over `warmup_steps`, then constant (docs/PROTOCOL.md section 6) or, with
    `lr_schedule="linear"`, linear decay to 0 at `steps` (fairseq's polynomial_decay with power 1, wav2vec 2.0)."""
    if cfg.warmup_steps and step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
    if cfg.lr_schedule == "linear":
        return cfg.lr * max(0.0, (cfg.steps - step) / max(1, cfg.steps - cfg.warmup_steps))
    return cfg.lr


def adaptive_clip_grad(params, clip: float, eps: float = 1e-3) -> None:
    """AGC (Brock et al. 2021), unit-wise; timm's implementation."""
    from timm.utils.agc import adaptive_clip_grad as agc

    agc(params, clip_factor=clip, eps=eps)


def _resume_changes(saved: dict, cfg: PretrainConfig, sharded: bool) -> list[str]:
    """What differs between the saved run config and `cfg`, as `key: saved -> now` lines (allowed keys skipped)."""
    now = _jsonable(cfg.to_dict())
    defaults = _jsonable(PretrainConfig().to_dict())  # a field added since the run was saved: its default
    may = set(RESUME_MAY_CHANGE) - ({"num_workers"} if sharded else set())
    out = []
    for k in sorted(set(now) - may):
        a, b = saved.get(k, defaults[k]), now[k]
        if k == "data" and isinstance(a, str) and isinstance(b, str):
            a, b = _abs(a), _abs(b)
        if a != b:
            out.append(f"{k}: {a!r} -> {b!r}")
    return out


def _abs(path: str) -> str:
    return os.path.abspath(path) if path else path


def _jsonable(v):
    return json.loads(json.dumps(v))


def data_fingerprint(source: Source) -> str:
    """sha256 over the clip list (absolute paths, labels, segments) or the shard list (names, clip counts)."""
    h = hashlib.sha256(f"{source.kind}\n{json.dumps(list(source.label_names))}\n".encode())
    if source.shards:
        for shard, count in zip(source.shards, source.shard_counts):
            h.update(f"{os.path.basename(shard)}\t{count}\n".encode())
    for it in source.items:
        h.update(f"{os.path.abspath(it.path)}\t{';'.join(it.labels)}\t{it.start}\t{it.end}\n".encode())
    return h.hexdigest()


def _read_metrics(path: Path) -> list[dict]:
    """The rows of metrics.jsonl; lines that do not parse (a row torn by a kill) are dropped with a warning."""
    rows, torn = [], 0
    for ln in path.read_text(errors="replace").splitlines():
        if not ln.strip():
            continue
        try:
            row = json.loads(ln)
            rows.append(row) if isinstance(row, dict) and isinstance(row.get("step"), int) else None
            torn += not (isinstance(row, dict) and isinstance(row.get("step"), int))
        except json.JSONDecodeError:
            torn += 1
    if torn:
        warnings.warn(f"{path}: dropped {torn} unreadable row(s) (torn by an interrupted write)", stacklevel=2)
    return rows


def _truncate_metrics(path: Path, step: int) -> None:
    """On resume, drop metric rows past the checkpoint (and torn rows) so the log reads as one uninterrupted run."""
    if path.is_file():
        rows = [r for r in _read_metrics(path) if r["step"] <= step]
        write_text(path, "".join(json.dumps(r) + "\n" for r in rows))


def _saved_fingerprint(out: Path) -> str | None:
    try:
        return json.loads((out / "run.json").read_text()).get("data_fingerprint")
    except (OSError, ValueError, AttributeError):
        return None


def pretrain(cfg: PretrainConfig) -> Path:
    """Run (or resume) pre-training as configured; returns the exported encoder `<out>/encoder.safetensors`."""
    cfg.validate()
    if not cfg.data:
        raise ValueError("no training data: set `data` (a folder, manifest, AudioSet root or shards)")
    out = Path(cfg.out)
    # --- before any compute: the device, the run folder, the network config, what a resume would change
    if cfg.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("device 'cuda': CUDA is not available on this machine")
    claim_run_folder(out, resume=cfg.resume, overwrite=cfg.overwrite, remove=False)
    check_model_config(cfg.model, cfg.model_kwargs, where="model / model_kwargs: ")
    saved = saved_run_config(out) if cfg.resume else None
    if saved is not None and (changes := _resume_changes(saved, cfg, sharded=False)):
        raise RunFolderError(f"cannot resume {out} with different settings ({'; '.join(changes)}); "
                             "use a new --out (or --overwrite) to train with them")  # fmt: skip
    env = dist.setup(cfg.device)
    device, main = env.device, env.is_main
    if cfg.batch_size % env.world_size:
        raise ValueError(f"global batch {cfg.batch_size} is not divisible by the world size {env.world_size}")
    per_rank = cfg.batch_size // env.world_size
    torch.manual_seed(cfg.seed + env.rank)
    np.random.seed(cfg.seed + env.rank)

    # --- data: this rank's slice of every global batch, decoded in workers
    source = open_source(cfg.data, cfg.data_format, cfg.audioset_subsets, cfg.librispeech_subsets)
    crop = int(round(cfg.crop_seconds * SAMPLE_RATE))
    fingerprint = data_fingerprint(source)
    if saved is not None:
        changes = _resume_changes(saved, cfg, sharded=True) if source.shards else []
        before = _saved_fingerprint(out)
        if before is not None and before != fingerprint:
            changes.append(f"data contents: fingerprint {before[:12]} -> {fingerprint[:12]} ({len(source)} clips now)")
        if changes:
            raise RunFolderError(f"cannot resume {out} with different settings ({'; '.join(changes)}); "
                                 "use a new --out (or --overwrite) to train with them")  # fmt: skip
    if main:  # the data opened: only now may --overwrite delete the previous run
        claim_run_folder(out, resume=cfg.resume, overwrite=cfg.overwrite)
        check_output_dir(out, "--out")

    # --- model: the objective owns frontend, encoder and heads
    encoder = create_model(cfg.model, **cfg.model_kwargs)
    num_classes = len(source.label_names)
    if cfg.objective == "supervised" and cfg.num_classes and cfg.num_classes != num_classes:
        raise ValueError(f"config says {cfg.num_classes} classes but the data has {num_classes} labels")
    objective = build_objective(cfg, encoder, num_classes, num_frames(crop)).to(device)
    model = objective
    if env.world_size > 1:
        if device.type == "cuda":  # encoder BatchNorms (CNN baselines) span the global batch too
            model = torch.nn.SyncBatchNorm.convert_sync_batchnorm(model)
        model = dist.wrap_ddp(model, device)
    optimizer = torch.optim.Adam(
        [p for p in objective.parameters() if p.requires_grad],
        lr=cfg.lr,
        betas=cfg.betas,
        eps=cfg.adam_eps,
        weight_decay=cfg.weight_decay,
        decoupled_weight_decay=cfg.decoupled_weight_decay,
    )
    use_bf16 = cfg.precision == "bf16" or (cfg.precision == "auto" and device.type == "cuda")

    # --- resume
    start, skipped_total = 0, 0
    ckpt = latest_checkpoint(out) if cfg.resume else None
    if ckpt is not None:
        state = load_training_state(ckpt, objective, optimizer, env.rank)
        start, skipped_total = state["step"], state["skipped_files"] if main else 0
        if main:
            print(f"resuming {out} from {ckpt.name} (step {start}, data position {state['data_position']})")
    if main:
        out.mkdir(parents=True, exist_ok=True)
        write_json(out / "config.json", cfg.to_dict())
        run_info = {
            "world_size": env.world_size,
            "per_rank_batch": per_rank,
            "device": str(device),
            "bf16": use_bf16,
            "clips": len(source),
            "data_fingerprint": fingerprint,
            "missing": source.missing,
            "label_count": num_classes,
            "encoder_params": sum(p.numel() for p in encoder.parameters()),
            "torch": torch.__version__,
            "python": platform.python_version(),
        }
        write_json(out / "run.json", run_info)
        _truncate_metrics(out / "metrics.jsonl", start)

    if source.shards:
        stream = ShardStream(
            source, crop, objective.views, per_rank, cfg.seed, env.rank, env.world_size, cfg.num_workers, start,
            cfg.max_bad_in_a_row,
        )  # fmt: skip
        loader = DataLoader(stream, batch_size=None, num_workers=cfg.num_workers, pin_memory=device.type == "cuda")
        position = stream.position
    else:
        dataset = ClipDataset(source.items, source.label_names, crop, objective.views, cfg.seed, cfg.max_bad_in_a_row)
        weights = balanced_weights(source.items, source.label_names) if cfg.class_balanced else None
        sampler = StepSampler(len(dataset), cfg.batch_size, env.rank, env.world_size, cfg.seed, start, weights)
        loader = DataLoader(
            dataset, batch_sampler=sampler, collate_fn=collate, num_workers=cfg.num_workers,
            pin_memory=device.type == "cuda", generator=torch.Generator(),
        )  # fmt: skip
        position = sampler.position
    batches = iter(loader)

    # --- train
    from tqdm import tqdm

    bar = tqdm(total=cfg.steps, initial=start, disable=not (main and cfg.progress), unit="step", dynamic_ncols=True)
    model.train()
    t_last, steps_since, bad_local = time.perf_counter(), 0, 0
    for step in range(start, cfg.steps):
        lr = lr_at(step, cfg)
        for group in optimizer.param_groups:
            group["lr"] = lr
        batch = next(batches)
        bad_local += int(batch.pop("bad"))  # undecodable files this rank replaced (counted, reported in metrics)
        batch = {k: v.to(device, non_blocking=True) for k, v in batch.items()}
        generator = torch.Generator().manual_seed(step_seed(cfg.seed, step, env.rank))
        with torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=use_bf16):
            logs = model(batch, generator=generator)
        logs["loss"].backward()
        if cfg.agc_clip > 0:
            adaptive_clip_grad(objective.encoder.parameters(), cfg.agc_clip, cfg.agc_eps)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        objective.on_step_end()
        steps_since += 1
        done = step + 1

        if done % cfg.log_every == 0 or done == cfg.steps:
            values = {k: dist.all_reduce_sum(float(v.detach()), device) / env.world_size for k, v in logs.items()}
            skipped = skipped_total + int(dist.all_reduce_sum(bad_local, device))
            elapsed = time.perf_counter() - t_last
            row = {"step": done, **values, "lr": lr, "skipped_files": skipped}
            row.update({"step_time_s": elapsed / steps_since, "clips_per_s": cfg.batch_size * steps_since / elapsed})
            if main:
                with open(out / "metrics.jsonl", "a") as f:
                    f.write(json.dumps(row) + "\n")
                bar.set_postfix(loss=f"{values['loss']:.4f}", clips_s=f"{row['clips_per_s']:.1f}")
            t_last, steps_since = time.perf_counter(), 0
        bar.update(1)

        if done % cfg.ckpt_every == 0 or done == cfg.steps:
            skipped = skipped_total + int(dist.all_reduce_sum(bad_local, device))
            rngs = [capture_rng()]
            if env.world_size > 1:
                rngs = [None] * env.world_size
                torch.distributed.all_gather_object(rngs, capture_rng())
            if main:
                info = {"data_position": position(done), "skipped_files": skipped, "config": cfg.to_dict()}
                save_training_state(out, done, objective, optimizer, rngs, info, cfg.keep_checkpoints)
                meta = {"step": done, "objective": cfg.objective, "preset": cfg.preset, "run": str(out)}
                save_checkpoint(objective.encoder, out / ENCODER_FILE, extra={"hares_pretrain": meta})
            dist.barrier()
    bar.close()
    if main and cfg.steps > start and skipped:  # all ranks, as of the last step (which always logs)
        print(f"{out}: skipped {skipped} undecodable file(s) while training (each warned; `skipped_files` in metrics)")
    if main and start >= cfg.steps:
        print(f"{out}: already trained for {start} >= {cfg.steps} steps; nothing to do")
    dist.barrier()
    dist.cleanup()
    return out / ENCODER_FILE
