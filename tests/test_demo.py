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
