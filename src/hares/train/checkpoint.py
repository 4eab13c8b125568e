"""Training state on disk: safetensors for tensors, JSON for everything else; no pickle anywhere.

A checkpoint is a folder `<out>/checkpoints/step_XXXXXXXX/` holding
  model.safetensors  the objective's state dict (encoder, heads, buffers such as BYOL-A's memory),
  optim.safetensors  the optimiser state tensors, flattened as `state.<param id>.<key>`,
  rng.safetensors    RNG state tensors of every rank (torch CPU / CUDA, numpy's key array),
  state.json         step, data position, optimiser param groups and scalars, the other RNG fields, config.
It is written in a hidden temporary folder that is renamed into place, then `checkpoints/latest` (written
atomically) names it: a killed run never leaves a half-written checkpoint that resume would pick up. Rotation
keeps the checkpoint just written and the newest others by step number (never by name).

Run folders are owned (`claim_run_folder`): a new run refuses a folder that holds one (`--resume` continues it,
`--overwrite` replaces it), and `--resume` refuses a folder without a hares run in it.
"""

from __future__ import annotations

import json
import os
import random
import re
import shutil
from pathlib import Path
from typing import Any

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from hares.io import file_mode, write_text

LATEST = "latest"
CONFIG_FILE = "config.json"
# Everything a run writes into its folder (what `--overwrite` removes, and what marks a folder as holding a run).
RUN_FILES = ("config.json", "run.json", "metrics.jsonl", "checkpoints", "encoder.safetensors")
_STEP_DIR = re.compile(r"step_(\d+)")


class RunFolderError(ValueError):
    """A run folder that cannot be used as asked (it holds a run, holds none to resume, or resumes differently)."""


def capture_rng() -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """This process's RNG states (torch, CUDA, numpy, python) as (tensors, JSON-able fields)."""
    np_state = np.random.get_state()
    tensors = {"torch": torch.get_rng_state(), "numpy_keys": torch.from_numpy(np_state[1].astype(np.int64))}
    if torch.cuda.is_available():
        tensors.update({f"cuda{i}": s for i, s in enumerate(torch.cuda.get_rng_state_all())})
    py = random.getstate()
    meta = {
        "numpy": [np_state[0], int(np_state[2]), int(np_state[3]), float(np_state[4])],
        "python": [py[0], list(py[1]), py[2]],
    }
    return tensors, meta


def restore_rng(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> None:
    torch.set_rng_state(tensors["torch"])
    cuda = [tensors[k] for k in sorted(tensors) if k.startswith("cuda")]
    if cuda and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)
    name, pos, has_gauss, gauss = meta["numpy"]
    np.random.set_state((name, tensors["numpy_keys"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, state, gauss_next = meta["python"]
    random.setstate((version, tuple(state), gauss_next))


def _flatten_optimizer(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    sd = optimizer.state_dict()
    tensors, scalars = {}, {}
    for pid, state in sd["state"].items():
        for k, v in state.items():
            if torch.is_tensor(v):
                tensors[f"state.{pid}.{k}"] = v.detach().contiguous().cpu()
            else:
                scalars.setdefault(str(pid), {})[k] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def _unflatten_optimizer(tensors: dict[str, torch.Tensor], meta: dict[str, Any]) -> dict[str, Any]:
    state: dict[int, dict[str, Any]] = {}
    for name, v in tensors.items():
        _, pid, key = name.split(".", 2)
        state.setdefault(int(pid), {})[key] = v
    for pid, extra in meta["scalars"].items():
        state.setdefault(int(pid), {}).update(extra)
    return {"state": state, "param_groups": meta["param_groups"]}


def save_training_state(
    out: str | os.PathLike,
    step: int,
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    rng: list[tuple[dict[str, torch.Tensor], dict[str, Any]]],
    info: dict[str, Any],
    keep: int = 2,
) -> Path:
    """Write the checkpoint of `step` (after `step` optimiser steps); `rng` holds every rank's `capture_rng()`."""
    root = Path(out) / "checkpoints"
    final = root / f"step_{step:08d}"
    tmp = root / f".tmp-step_{step:08d}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    model_tensors = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    save_file(model_tensors, str(tmp / "model.safetensors"))
    opt_tensors, opt_meta = _flatten_optimizer(optimizer)
    save_file(opt_tensors, str(tmp / "optim.safetensors"))
    rng_tensors = {f"rank{r}.{k}": v.contiguous() for r, (t, _) in enumerate(rng) for k, v in t.items()}
    save_file(rng_tensors, str(tmp / "rng.safetensors"))
    state = {"step": step, "optimizer": opt_meta, "rng": [m for _, m in rng], **info}
    (tmp / "state.json").write_text(json.dumps(state, indent=1, default=str) + "\n")
    for f in tmp.iterdir():  # safetensors writes its files 0600: give them the user's umask like everything else
        f.chmod(file_mode())
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)
    write_text(root / LATEST, final.name + "\n")
    others = sorted((p for p in root.iterdir() if p.is_dir() and p != final and _step_of(p) is not None), key=_step_of)
    for old in others[: max(0, len(others) - (keep - 1))]:  # keep `final` and the newest keep - 1 others by step
        shutil.rmtree(old, ignore_errors=True)
    return final


def _step_of(path: Path) -> int | None:
    m = _STEP_DIR.fullmatch(path.name)
    return int(m.group(1)) if m else None


def run_files(out: str | os.PathLike) -> list[str]:
    """The names in `RUN_FILES` that exist in `out`."""
    return [n for n in RUN_FILES if (Path(out) / n).exists()]


def saved_run_config(out: str | os.PathLike) -> dict[str, Any] | None:
    """The config a run in `out` trained with (its latest checkpoint's, else config.json), or None if `out`
    holds no hares run."""
    out = Path(out)
    try:
        ckpt = latest_checkpoint(out)
        if ckpt is not None:
            return dict(json.loads((ckpt / "state.json").read_text())["config"])
    except (OSError, ValueError, KeyError, TypeError):
        pass  # a broken pointer: the run's config.json still says what it is
    try:
        if (out / CONFIG_FILE).is_file():
            saved = json.loads((out / CONFIG_FILE).read_text())
            return saved if isinstance(saved, dict) and {"objective", "model", "batch_size"} <= set(saved) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return None


def claim_run_folder(out: str | os.PathLike, *, resume: bool, overwrite: bool, remove: bool = True) -> None:
    """Check that `out` may be used as asked; with `overwrite`, remove the previous run's files (if `remove`).

    Raises RunFolderError: a new run where one exists (naming `--resume` and `--overwrite`), `--resume` where
    there is no hares run, or both flags at once. `remove=False` only checks (ranks other than 0).
    """
    out = Path(out)
    if resume and overwrite:
        raise RunFolderError("--resume and --overwrite exclude each other: continue the run, or replace it")
    if out.exists() and not out.is_dir():
        raise RunFolderError(f"--out {out}: exists and is not a folder")
    present = run_files(out)
    if resume:
        if saved_run_config(out) is None:
            what = f"holds {', '.join(present)} but no readable hares run config" if present else "holds no hares run"
            raise RunFolderError(f"cannot resume {out}: it {what}; start a run there without --resume")
        return
    if not present:
        return
    if not overwrite:
        try:
            ckpt = latest_checkpoint(out)
        except OSError:
            ckpt = None
        at = f" at step {_step_of(ckpt)}" if ckpt is not None else ""
        raise RunFolderError(
            f"{out}: already holds a hares run{at} ({', '.join(present)}); continue it with --resume, or replace it "
            "with --overwrite (deletes its checkpoints and metrics)"
        )
    if remove:
        for name in present:
            target = out / name
            shutil.rmtree(target) if target.is_dir() and not target.is_symlink() else target.unlink()


def latest_checkpoint(out: str | os.PathLike) -> Path | None:
    """The checkpoint folder `checkpoints/latest` names, or None when the run has none."""
    pointer = Path(out) / "checkpoints" / LATEST
    if not pointer.is_file():
        return None
    path = pointer.parent / pointer.read_text().strip()
    if not (path / "state.json").is_file():
        raise FileNotFoundError(f"{pointer} names {path}, which is not a complete checkpoint")
    return path


def load_training_state(
    path: str | os.PathLike, model: nn.Module, optimizer: torch.optim.Optimizer, rank: int = 0
) -> dict[str, Any]:
    """Load weights and optimiser state into `model` / `optimizer`, restore this rank's RNG; return state.json."""
    path = Path(path)
    state = json.loads((path / "state.json").read_text())
    model.load_state_dict(load_file(str(path / "model.safetensors")), strict=True)
    opt_tensors = load_file(str(path / "optim.safetensors"))
    optimizer.load_state_dict(_unflatten_optimizer(opt_tensors, state["optimizer"]))
    rng_all = load_file(str(path / "rng.safetensors"))
    if rank >= len(state["rng"]):
        raise ValueError(f"{path}: saved by {len(state['rng'])} ranks; cannot resume rank {rank}")
    prefix = f"rank{rank}."
    restore_rng({k[len(prefix) :]: v for k, v in rng_all.items() if k.startswith(prefix)}, state["rng"][rank])
    return state
