"""`hares report RUN_DIR... --out DIR`: merging runs equals one run with both encoders; protocol mismatches and
duplicate labels are refused; `--compare` reference columns; `hares references`."""

from __future__ import annotations

import json
import shutil

import pytest

from hares.cli import main
from hares.evaluate import run_eval

FAST = {"max_epochs": 15, "seeds": (0, 1), "num_workers": 0, "progress": False, "resamples": 200}


@pytest.fixture
def runs(tmp_path, csv_task, tiny_net):
    """A joint run of two encoders and one run per encoder, sharing the embedding cache and the seeds."""
    encoders = ["logmel", f"rnd=random:{tiny_net}"]
    task = [f"csv:{csv_task}"]
    cache = tmp_path / "cache"
    run_eval(encoders, task, out=tmp_path / "joint", cache_dir=cache, **FAST)
    run_eval(encoders[:1], task, out=tmp_path / "a", cache_dir=cache, **FAST)
    run_eval(encoders[1:], task, out=tmp_path / "b", cache_dir=cache, **FAST)
    return tmp_path


def test_merging_two_runs_equals_one_run_with_both_encoders(runs, capsys):
    out = runs / "merged"
    rc = main(["report", str(runs / "a"), str(runs / "b"), "--out", str(out), "--resamples", "200",
               "--compare", "paper:SF_NFNET_F0"])  # fmt: skip
    assert rc == 0
    assert "| Tasks | logmel | rnd | SF NFNet-F0 (ours), Table 4 † |" in capsys.readouterr().out
    joint = json.loads((runs / "joint" / "results.json").read_text())
    merged = json.loads((out / "results.json").read_text())
    keys = ("encoder", "task", "score", "std", "ci_low", "ci_high", "num_test")
    assert [[r[k] for k in keys] for r in merged["results"]] == [[r[k] for k in keys] for r in joint["results"]]
    assert merged["aggregates"] == joint["aggregates"]
    assert merged["stats"]["paired"] == joint["stats"]["paired"] and len(merged["stats"]["paired"]) == 1
    assert (out / "report.csv").read_text() == (runs / "joint" / "report.csv").read_text()
    assert (out / "paired.csv").read_text() == (runs / "joint" / "paired.csv").read_text()
    assert [m["dir"] for m in merged["merge"]["runs"]] == [str(runs / "a"), str(runs / "b")]
    assert merged["references"][0]["name"] == "paper:SF_NFNET_F0" and merged["merge"]["protocol_mismatch"] == []
    md = (out / "report.md").read_text()
    assert "Published numbers (no intervals)" in md and "## Paired comparisons" in md and "### logmel vs rnd" in md
    assert (out / "paired.png").read_bytes()[:4] == b"\x89PNG"
    # the merged folder is a run folder itself: it can be re-reported (here with more resamples)
    assert main(["report", str(out), "--out", str(runs / "again"), "--resamples", "300"]) == 0
    again = json.loads((runs / "again" / "results.json").read_text())
    assert again["stats"]["resamples"] == 300 and [r["score"] for r in again["results"]] == [
        r["score"] for r in joint["results"]
    ]


def test_protocol_mismatch_and_duplicate_labels_are_refused(runs, capsys):
    changed = runs / "b_changed"
    shutil.copytree(runs / "b", changed)
    results = json.loads((changed / "results.json").read_text())
    results["protocol"]["probe"]["max_epochs"] = 16
    (changed / "results.json").write_text(json.dumps(results))
    assert main(["report", str(runs / "a"), str(changed), "--out", str(runs / "x")]) == 2
    err = capsys.readouterr().err
    assert "different protocol values" in err and "probe.max_epochs: 15" in err and "--allow-protocol-mismatch" in err
    assert not (runs / "x").exists()
    assert main(["report", str(runs / "a"), str(changed), "--out", str(runs / "x"), "--allow-protocol-mismatch",
                 "--resamples", "50"]) == 0  # fmt: skip
    md = (runs / "x" / "report.md").read_text()
    assert "Protocol mismatch" in md and "probe.max_epochs" in md
    assert json.loads((runs / "x" / "results.json").read_text())["merge"]["protocol_mismatch"]

    assert main(["report", str(runs / "a"), str(runs / "joint"), "--out", str(runs / "y")]) == 2
    assert "encoder label 'logmel' is in both" in capsys.readouterr().err
    assert main(["report", str(runs / "a"), "--out", str(runs / "y"), "--compare", "paper:NOPE"]) == 2
    assert "no reference row 'NOPE'" in capsys.readouterr().err
    assert main(["report", str(runs / "nothing"), "--out", str(runs / "y")]) == 2
    assert "no results.json" in capsys.readouterr().err


def test_references_command(capsys):
    assert main(["references"]) == 0
    out = capsys.readouterr().out
    assert "paper:SF_NFNET_F0" in out and "paper:T2_VIT_BASE_SIMCLR" in out and "ICASSP 2022" in out
