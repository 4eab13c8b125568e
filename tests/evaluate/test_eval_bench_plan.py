"""`hares bench` (throughput, FLOPs, share of the matmul peak) and `hares eval --plan` (estimates, no extraction)."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from hares.cli import main
from hares.evaluate.bench import measure_encoder
from hares.evaluate.embed import extract
from hares.evaluate.encoders import load_encoder
from hares.evaluate.plan import plan_eval, window_lengths
from hares.evaluate.probe import LBFGS_PLAN_EVALS


@pytest.fixture(autouse=True)
def small_peak_matmul(monkeypatch):
    """A 256^3 matmul for the peak: the tests check the arithmetic, not this machine's peak."""
    monkeypatch.setattr("hares.evaluate.bench.PEAK_SIZES", {"cpu": 256})


def test_bench_counts_the_network_flops_and_reports_rates(tiny_net):
    row = measure_encoder(f"random:{tiny_net}", "cpu", batch=2, seconds=1.0, min_time=0.0)
    frames = 1 + (16000 - 400) // 160  # 98 frames x 80 mel bins, conv 1 -> 8 channels, 3 x 3
    assert row["gflop_per_clip"] * 1e9 == pytest.approx(2 * frames * 80 * 8 * 9)
    assert row["clips_per_s"] > 0 and row["real_time_factor"] == row["clips_per_s"] * 1.0
    assert row["gflop_per_s"] == pytest.approx(row["gflop_per_clip"] * row["clips_per_s"])
    assert 0 < row["peak_share"] == pytest.approx(row["gflop_per_s"] / row["matmul_peak_gflop_per_s"])


def test_bench_cli_json_and_errors(capsys, tiny_net):
    args = ["bench", "--encoder", "logmel", "--encoder", f"t=random:{tiny_net}", "--device", "cpu", "--batch", "2",
            "--seconds", "0.5", "--min-time", "0", "--json"]  # fmt: skip
    assert main(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["encoder"] for r in rows] == ["logmel", "t"] and rows[0]["gflop_per_clip"] == 0.0
    assert main(["bench", "--encoder", "random:no_such_net", "--device", "cpu", "--min-time", "0"]) == 2
    assert "unknown network" in capsys.readouterr().err


def test_window_lengths_follow_the_clip_policy():
    assert window_lengths(3.0, 10.24, 1.0) == [3.0]
    assert window_lengths(25.0, 10.24, 1.0) == [10.24, 10.24, 25.0 - 20.48]
    assert window_lengths(20.9, 10.24, 1.0) == [10.24, 10.24, 1.0]  # 0.42 s left: padded to 1 s


def test_plan_estimates_without_extracting(tmp_path, csv_task, tiny_net, monkeypatch, capsys):
    def no_extraction(*args, **kwargs):
        raise AssertionError("the plan extracted embeddings")

    monkeypatch.setattr("hares.evaluate.embed._run_shards", no_extraction)
    kw = {"cache_dir": tmp_path / "cache", "device": "cpu", "progress": False, "calibration_time": 0.0}
    plan = plan_eval(["logmel", f"random:{tiny_net}"], [f"csv:{csv_task}"], max_epochs=10, **kw)
    rows = {r["encoder"]: r for r in plan["rows"]}
    seconds = sum(sf.info(str(p)).duration for p in csv_task.parent.glob("*.wav"))
    assert rows["logmel"]["clips"] == 72 and rows["logmel"]["windows"] == 72
    assert np.isclose(rows["logmel"]["audio_hours"], seconds / 3600)
    assert not rows["logmel"]["cached"] and rows["logmel"]["extraction_s"] > 0
    r = rows["logmel"]
    assert r["decoding_s"] > 0 and r["extraction_s"] >= max(r["network_s"], r["decoding_s"])
    # linear probe: (4 N D C + 2 Nv D C) FLOPs per L-BFGS evaluation, LBFGS_PLAN_EVALS per L2 point, 15 points,
    # fitted once (seed-independent); logmel D = 160, 3 classes, 36 train, 18 valid
    flops = (4 * 36 * 160 * 3 + 2 * 18 * 160 * 3) * LBFGS_PLAN_EVALS * 15
    assert np.isclose(rows["logmel"]["probe_gflop"] * 1e9, flops)
    assert rows[f"random:{tiny_net}"]["probe_gflop"] < rows["logmel"]["probe_gflop"]  # 8-d embeddings

    monkeypatch.undo()
    extract(load_encoder("logmel"), _manifest(csv_task), tmp_path / "cache", num_workers=0, progress=False)
    assert main(["eval", "--plan", "--encoder", "logmel", "--tasks", f"csv:{csv_task}", "--cache-dir",
                 str(tmp_path / "cache"), "--device", "cpu", "--no-progress"]) == 0  # fmt: skip
    out = capsys.readouterr().out
    assert "csv:task" in out and "cached" in out and "Nothing was extracted" in out


def _manifest(csv_task):
    from hares.tasks import get_task

    return get_task(f"csv:{csv_task}").build_manifest(None)


def test_bench_takes_any_eval_spec_py_waveform_encoder(tmp_path):
    """A `py:` waveform encoder (no frontend): FLOPs are its own linear layer, 2 x 160 x 5 per 10 ms frame."""
    path = tmp_path / "frames_encoder.py"
    path.write_text(
        "import torch\nfrom torch import nn\n\n\nclass Frames(nn.Module):\n    def __init__(self):\n"
        "        super().__init__()\n        self.lin = nn.Linear(160, 5)\n\n    def forward(self, wav):\n"
        "        return self.lin(wav.unfold(1, 160, 160))\n\n\ndef make():\n    return Frames()\n"
    )
    row = measure_encoder(f"py:{path}:make", "cpu", batch=2, seconds=1.0, min_time=0.0)
    assert row["embed_dim"] == 5 and row["gflop_per_clip"] * 1e9 == pytest.approx(100 * 2 * 160 * 5)
