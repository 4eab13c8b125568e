"""benchmarks/mlp_probe.py runs end to end at a tiny scale: reference, pinned probe and oracle, JSON and figure."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[2]


def test_mlp_probe_benchmark_smoke(tmp_path: Path, monkeypatch):
    spec = importlib.util.spec_from_file_location("mlp_probe", REPO / "benchmarks" / "mlp_probe.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    argv = ["mlp_probe.py", "--task", "blobs20", "--scale", "0.02", "--oracle-epochs", "3", "--lrs", "1e-3", "3e-3"]
    monkeypatch.setattr(sys, "argv", [*argv, "--wds", "0", "--threads", "1", "--out", str(tmp_path)])
    bench.main()
    record = json.loads((tmp_path / "mlp_probe.json").read_text())
    assert (tmp_path / "mlp_probe.png").stat().st_size > 0
    assert record["rows"] == [400, 60, 100] and 0.05 < record["reference"]["test"] <= 1  # 20 classes: chance 0.05
    assert [(g["lr"], g["weight_decay"]) for g in record["probe"]["grid_valid"]] == [(1e-3, 0.0), (3e-3, 0.0)]
    curves = np.array(record["oracle"]["curves"])  # (valid/test, head, epoch)
    assert curves.shape == (2, 2, 3) and np.isfinite(curves).all()
    assert record["oracle"]["best_test"] == curves[1].max()
    for head, v, t in zip(record["oracle"]["heads"], curves[0], curves[1]):
        assert (
            head["best_valid"] == v.max()
            and head["test_at_best_valid"] == t[v.argmax()] <= record["oracle"]["best_test"]
        )
