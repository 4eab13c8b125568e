"""`hares demo --quick` end to end: generate -> SimCLR pre-training -> evaluation -> report with the three encoders."""

from __future__ import annotations

import csv
import json
import time

import pytest
import torch

from hares.cli import main


@pytest.fixture
def one_thread():
    """`--threads 1` sets torch's global thread count; give the other tests theirs back."""
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_quick_demo_end_to_end(tmp_path, capsys, one_thread):
    out = tmp_path / "demo"
    began = time.time() - 30  # as if `make demo` had spent 30 s setting up .venv
    args = ["demo", "--quick", "--out", str(out), "--seed", "1", "--threads", "1", "--started-at", str(began)]
    assert main(args) == 0
    for name in ("report.csv", "report.md", "report.png", "demo.json", "pretrain/encoder.safetensors"):
        assert (out / name).is_file(), name
    with open(out / "report.csv", newline="") as f:
        rows = list(csv.DictReader(f))
    text = (out / "report.csv").read_text()
    for encoder in ("simclr", "random", "logmel"):
        assert encoder in text
    assert rows, "report.csv has rows"
    summary = json.loads((out / "demo.json").read_text())
    assert summary["quick"] and summary["pretrain_steps"] >= 1
    assert set(summary["means"]) == {"simclr", "random", "logmel"}
    timings = summary["timings"]  # the budget counts from --started-at
    assert timings["setup_s"] >= 30 and timings["total_s"] >= timings["setup_s"] + timings["pretrain_s"]
    printed = capsys.readouterr().out
    assert "simclr" in printed and "logmel" in printed  # the table is printed at the end


def test_demo_help_lists_the_settings(capsys):
    try:
        main(["demo", "--help"])
    except SystemExit:
        pass
    text = capsys.readouterr().out
    for flag in ("--out", "--seed", "--budget-minutes", "--quick", "--steps", "--threads"):
        assert flag in text


def test_budgeted_pretraining_replans_and_stops_at_the_deadline(tmp_path, one_thread):
    """Stretches re-plan the step count from measured step times; the run ends where the plan says."""
    from dataclasses import replace as dc_replace

    from hares import demo
    from hares.data import synth
    from hares.train import pretrain

    torch.set_num_threads(1)
    root = synth.generate(tmp_path / "data", seed=0, quick=True, pool_size=8, workers=1, log=lambda m: None)
    s = dc_replace(demo.QUICK, calibration_steps=2, steps=10_000)
    cfg = demo.pretrain_config(root / "pool.csv", tmp_path / "pre", s, progress=False)
    metrics = tmp_path / "pre" / "metrics.jsonl"

    started = time.time()
    steps = demo._run_to_deadline(cfg, s, started + 6.0, metrics)
    final = pretrain(dc_replace(cfg, steps=steps, ckpt_every=steps, resume=True))
    logged = [json.loads(line)["step"] for line in metrics.read_text().splitlines()]
    assert final.is_file() and logged[-1] == steps and 2 < steps < 10_000
    assert time.time() - started < 6.0 + 5.0  # the plan holds to within a restart and a stretch's misestimate

    late = demo._run_to_deadline(
        dc_replace(cfg, out=str(tmp_path / "late")), s, time.time() - 1, tmp_path / "late" / "metrics.jsonl"
    )
    assert late == s.calibration_steps  # no time left: the calibration stretch is all there is
