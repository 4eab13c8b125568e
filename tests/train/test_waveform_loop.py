"""CPC and wav2vec 2.0 in the training loop: bit-exact kill-and-resume, the loss falls on real speech (FSDD),
LibriSpeech as `--data`, the debug presets through the CLI into `hares eval`."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from _helpers import run_killed_after
from safetensors.torch import load_file

import hares.train.loop as loop
from hares.cli import main
from hares.train.config import get_preset
from hares.train.data import open_source

needs_hf = pytest.mark.skipif(importlib.util.find_spec("transformers") is None, reason="needs transformers")
PRESETS = ["debug-cpc", pytest.param("debug-wav2vec2", marks=needs_hf)]


@pytest.mark.parametrize("preset", PRESETS)
def test_killed_and_resumed_run_equals_uninterrupted_run(tmp_path: Path, tone_folder: Path, preset, monkeypatch):
    common = dict(data=str(tone_folder), batch_size=4, steps=4, crop_seconds=0.5, ckpt_every=2, progress=False)
    straight = loop.pretrain(get_preset(preset, out=str(tmp_path / "straight"), **common))
    run_killed_after(monkeypatch, preset, tmp_path / "resumed", 2, **common)
    resumed = loop.pretrain(get_preset(preset, out=str(tmp_path / "resumed"), resume=True, **common))

    saved = {}
    for name in ("model", "optim"):
        a = load_file(str(tmp_path / "straight" / "checkpoints" / "step_00000004" / f"{name}.safetensors"))
        b = load_file(str(tmp_path / "resumed" / "checkpoints" / "step_00000004" / f"{name}.safetensors"))
        assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a), name  # bit-exact
        saved[name] = a
    ea, eb = load_file(str(straight)), load_file(str(resumed))
    assert all(torch.equal(ea[k], eb[k]) for k in ea)
    rows = [json.loads(ln) for ln in (tmp_path / "resumed" / "metrics.jsonl").read_text().splitlines()]
    ref = [json.loads(ln) for ln in (tmp_path / "straight" / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3, 4] and [r["loss"] for r in rows] == [r["loss"] for r in ref]
    if preset == "debug-wav2vec2":  # the Gumbel temperature's update counter travels in the checkpoint
        assert int(saved["model"]["num_updates"]) == 4 and rows[-1]["gumbel_temp"] < rows[0]["gumbel_temp"]


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_loss_falls_on_spoken_digits(tmp_path: Path, fsdd_files: list[Path], preset: str) -> None:
    files = [f for f in fsdd_files if f.name.split("_")[1] in ("jackson", "theo") and int(f.stem.split("_")[2]) < 4]
    assert len(files) == 80
    (tmp_path / "fsdd.csv").write_text("path\n" + "".join(f"{f}\n" for f in files))
    cpc = preset == "debug-cpc"
    cfg = get_preset(
        preset, data=str(tmp_path / "fsdd.csv"), out=str(tmp_path / "run"), batch_size=8, steps=40 if cpc else 60,
        crop_seconds=0.5, lr=2e-3 if cpc else 5e-3, warmup_steps=0, log_every=1, progress=False,
    )  # fmt: skip
    loop.pretrain(cfg)
    rows = [json.loads(ln) for ln in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    key = "loss" if cpc else "contrastive"  # wav2vec 2.0: the prediction term (the feature penalty falls trivially)
    first, last = np.mean([r[key] for r in rows[:5]]), np.mean([r[key] for r in rows[-5:]])
    # chance: every candidate equally likely (CPC: 2 directions x 12 steps x log(1 + 32); wav2vec 2.0: log(1 + 100))
    chance = 24 * np.log(33) if cpc else np.log(101)
    assert last < (0.9 if cpc else 0.93) * first and last < chance - 0.1, (first, last, chance)
    assert np.mean([r["acc"] for r in rows[-5:]]) > np.mean([r["acc"] for r in rows[:5]])


def write_librispeech(root: Path, subsets=("train-clean-100", "dev-clean")) -> Path:
    """A miniature LibriSpeech: 2 speakers x 1 chapter x 2 utterances per subset, 0.6 s each."""
    rng = np.random.default_rng(0)
    for subset in subsets:
        for speaker, chapter in (("19", "198"), ("26", "495")):
            d = root / "LibriSpeech" / subset / speaker / chapter
            d.mkdir(parents=True)
            for utt in range(2):
                sf.write(d / f"{speaker}-{chapter}-{utt:04d}.flac", 0.1 * rng.standard_normal(9600), 16000)
            (d / f"{speaker}-{chapter}.trans.txt").write_text(f"{speaker}-{chapter}-0000 HELLO\n")
    return root / "LibriSpeech"


def test_librispeech_is_a_pretraining_source(tmp_path: Path) -> None:
    root = write_librispeech(tmp_path)
    src = open_source(root, librispeech_subsets=("train-clean-100",))
    assert src.kind == "librispeech" and len(src) == 4 and src.label_names == ["19", "26"]
    assert all("train-clean-100" in it.path and it.labels in (("19",), ("26",)) for it in src.items)
    assert len(open_source(root / "train-clean-100")) == 4  # one subset folder named directly
    assert len(open_source(root, librispeech_subsets=("train-clean-100", "dev-clean"))) == 8
    cfg = get_preset(
        "debug-cpc", data=str(root), out=str(tmp_path / "run"), batch_size=2, steps=1, progress=False,
        librispeech_subsets=("train-clean-100",),
    )  # fmt: skip
    loop.pretrain(cfg)
    assert json.loads((tmp_path / "run" / "run.json").read_text())["clips"] == 4


@pytest.mark.slow
@pytest.mark.parametrize("preset", PRESETS)
def test_cli_debug_preset_then_resume_then_eval(tmp_path: Path, tone_folder: Path, preset: str, capsys) -> None:
    run = tmp_path / "run"
    args = ["pretrain", "--preset", preset, "--data", str(tone_folder), "--out", str(run), "--no-progress"]
    assert main([*args, "--steps", "2", "--batch-size", "4"]) == 0
    assert main([*args, "--steps", "3", "--batch-size", "4", "--resume"]) == 0
    assert "resuming" in capsys.readouterr().out
    assert [json.loads(ln)["step"] for ln in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    task = tmp_path / "task.csv"
    rows = [f"{p},{p.parent.name},{p.stem}" for p in sorted(tone_folder.rglob("*.wav"))]
    task.write_text("path,label,group\n" + "\n".join(rows) + "\n")
    out = tmp_path / "eval"
    code = main([
        "eval", "--encoder", str(run / "encoder.safetensors"), "--tasks", f"csv:{task}", "--out", str(out),
        "--cache-dir", str(tmp_path / "cache"), "--seeds", "0", "--no-progress", "--workers", "0",
    ])  # fmt: skip
    assert code == 0
    results = json.loads((out / "results.json").read_text())
    assert "csv:task" in json.dumps(results)
