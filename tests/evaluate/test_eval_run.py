"""End to end: `run_eval` / `hares eval` on a small CSV task, the report files, cache reuse, bad audio."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest

from hares.cli import main
from hares.evaluate import run_eval
from hares.evaluate.run import BadAudioError, Protocol

FAST = {"max_epochs": 15, "seeds": (0, 1), "num_workers": 0, "progress": False}


def test_run_eval_writes_the_report_and_reuses_the_cache(tmp_path, csv_task, tiny_net, monkeypatch):
    out = tmp_path / "out"
    encoders = ["logmel", f"rnd=random:{tiny_net}"]
    results = run_eval(encoders, [f"csv:{csv_task}"], out=out, cache_dir=tmp_path / "cache", **FAST)
    assert {p.name for p in out.iterdir()} >= {"report.csv", "report.md", "report.png", "results.json"}
    rows = list(csv.DictReader(open(out / "report.csv")))
    assert list(rows[0]) == ["encoder", "task", "domain", "metric", "score", "std", "ci_low", "ci_high"]
    assert [r["encoder"] for r in rows] == ["logmel", "rnd"]
    logmel = float(rows[0]["score"])
    assert 60 < logmel <= 100  # three tone classes: log-mel statistics separate them
    md = (out / "report.md").read_text()
    assert "| Tasks | logmel | rnd |" in md and "HARES needs all 12" in md
    saved = json.loads((out / "results.json").read_text())
    for key in ("hares_version", "git_sha", "packages", "protocol", "encoders", "tasks", "results", "aggregates"):
        assert key in saved
    assert saved["protocol"]["probe"]["max_epochs"] == 15 and saved["protocol"]["probe"]["patience"] == 20
    assert saved["protocol_version"] == saved["protocol"]["version"] == 2
    assert saved["encoders"]["rnd"]["seed"] == 0 and len(saved["encoders"]["rnd"]["weights_hash"]) == 64
    task = saved["tasks"]["csv:task"]
    assert len(task["manifest_hash"]) == 64 and task["clips_per_split"] == {"test": 18, "train": 36, "valid": 18}
    selected = saved["results"][0]["folds"][0]["selected"]
    assert [s["seed"] for s in selected] == [0, 1] and selected[0]["solver"] == "lbfgs"  # the linear probe
    assert selected[0]["l2"] in saved["protocol"]["probe"]["l2_grid"] and selected[0]["grid_valid"]
    assert (out / "report.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"

    def no_extraction(*args, **kwargs):
        raise AssertionError("embeddings were recomputed")

    monkeypatch.setattr("hares.evaluate.embed._run_shards", no_extraction)
    again = run_eval(encoders, [f"csv:{csv_task}"], out=tmp_path / "out2", cache_dir=tmp_path / "cache", **FAST)
    assert [r["score"] for r in again["results"]] == [r["score"] for r in results["results"]]  # deterministic


def _corrupt(csv_path: Path, n: int) -> list[str]:
    rows = list(csv.DictReader(open(csv_path)))
    train = [r for r in rows if r["split"] == "train"][:n]
    for r in train:
        (csv_path.parent / r["path"]).write_bytes(b"not audio at all")
    return [r["path"] for r in train]


def test_too_much_bad_audio_fails_clearly(tmp_path, csv_task):
    names = _corrupt(csv_task, 2)  # 2 of 36 train clips: > 1%
    with pytest.raises(BadAudioError, match="2 of 36") as err:
        run_eval(["logmel"], [f"csv:{csv_task}"], cache_dir=tmp_path / "cache", **FAST)
    assert all(n in str(err.value) for n in names)
    code = main(["eval", "--encoder", "logmel", "--tasks", f"csv:{csv_task}", "--out", str(tmp_path / "o"),
                 "--cache-dir", str(tmp_path / "cache"), "--no-progress", "--workers", "0"])  # fmt: skip
    assert code == 2


def test_a_few_bad_files_are_skipped_and_listed(tmp_path, csv_task):
    (name,) = _corrupt(csv_task, 1)
    out = tmp_path / "out"
    results = run_eval(["logmel"], [f"csv:{csv_task}"], out=out, cache_dir=tmp_path / "cache",
                       max_bad_fraction=0.05, **FAST)  # fmt: skip
    (row,) = results["results"]
    assert len(row["bad_files"]) == 1 and name in row["bad_files"][0]
    assert row["folds"][0]["sizes"]["train"] == 35
    assert name in (out / "report.md").read_text()


def test_cli_eval_and_tasks(tmp_path, csv_task, capsys):
    code = main(["eval", "--encoder", "base=logmel", "--tasks", f"csv:{csv_task}", "--out", str(tmp_path / "o"),
                 "--cache-dir", str(tmp_path / "c"), "--seeds", "3", "--set", "max_epochs=5", "--set", "lrs=(1e-3,)",
                 "--no-progress", "--workers", "1", "--compare", "paper:SF_NFNET_F0", "--resamples", "50",
                 "--stats-seed", "7"])  # fmt: skip
    assert code == 0
    saved = json.loads((tmp_path / "o" / "results.json").read_text())
    assert saved["protocol"]["probe"]["seeds"] == [3] and saved["protocol"]["probe"]["lrs"] == [1e-3]
    assert saved["stats"]["resamples"] == 50 and saved["stats"]["seed"] == 7 and "bootstrap" in saved["stats"]["method"]
    assert saved["references"][0]["name"] == "paper:SF_NFNET_F0"
    assert "| Tasks | base | SF NFNet-F0 (ours), Table 4 † |" in capsys.readouterr().out
    assert main(["eval", "--encoder", "logmel", "--tasks", f"csv:{csv_task}", "--out", str(tmp_path / "o2"),
                 "--compare", "paper:NOPE"]) == 2  # fmt: skip
    assert "no reference row 'NOPE'" in capsys.readouterr().err
    (tmp_path / "data" / "ESC-50").mkdir(parents=True)
    assert main(["tasks", "--data-root", str(tmp_path / "data")]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert any(line.startswith("esc50") and "found" in line for line in lines)
    assert any(line.startswith("voxceleb1") and "missing" in line and "VoxCeleb1" in line for line in lines)


def test_protocol_overrides():
    p = Protocol.with_overrides(max_epochs=3, lrs=[0.1], window_s=5, seeds=4)
    assert p.probe.max_epochs == 3 and p.probe.lrs == (0.1,) and p.policy.window_s == 5.0 and p.probe.seeds == (4,)
    for bad, message in (("epochs", "unknown protocol setting 'epochs'"), ("weight_decay_mode", "is fixed")):
        with pytest.raises(KeyError, match=message):
            Protocol.with_overrides(**{bad: 3})
    assert np.isclose(Protocol().max_bad_fraction, 0.01)


def test_cross_validation_and_multilabel_tasks(tmp_path):
    from _eval_helpers import FREQS, write_tone

    rng = np.random.default_rng(0)
    folds, tags = ["path,label,split"], ["path,labels,split"]
    for i in range(45):
        label = list(FREQS)[i % 3]
        write_tone(tmp_path / f"{i}.wav", FREQS[label] * (1 + 0.03 * rng.standard_normal()), 0.4, seed=i)
        folds.append(f"{i}.wav,{label},fold{i % 5 + 1}")
        other = list(FREQS)[(i // 3) % 3]
        tags.append(f"{i}.wav,{label};{other},{('train', 'train', 'train', 'valid', 'test')[i % 5]}")
    (tmp_path / "folds.csv").write_text("\n".join(folds) + "\n")
    (tmp_path / "tags.csv").write_text("\n".join(tags) + "\n")
    results = run_eval(["logmel"], [f"csv:{tmp_path / 'folds.csv'}", f"csv:{tmp_path / 'tags.csv'}"],
                       cache_dir=tmp_path / "cache", **FAST)  # fmt: skip
    cv, ml = results["results"]
    assert [f["fold"] for f in cv["folds"]] == ["fold1", "fold2", "fold3", "fold4", "fold5"]
    assert all(f["sizes"] == {"train": 27, "valid": 9, "test": 9} for f in cv["folds"])
    per_seed = np.mean([[s["test"] for s in f["selected"]] for f in cv["folds"]], axis=0) * 100
    assert cv["score"] == pytest.approx(per_seed.mean()) and cv["std"] == pytest.approx(per_seed.std(ddof=1))
    assert ml["metric"] == "mAP" and 0 < ml["score"] <= 100
    assert cv["cache_key"] != ml["cache_key"]  # the manifest (labels, splits) is part of the key


def test_esc50_layout_runs_five_fold_cross_validation(tmp_path):
    """The real ESC-50 adapter (official meta/esc50.csv layout): 5 folds, test = fold i, valid = fold i+1."""
    from _eval_helpers import FREQS, write_tone

    from hares.data.adapters.esc50 import CLASSES

    root = tmp_path / "data" / "ESC-50-master"
    lines = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, freq in enumerate(FREQS.values()):
            for k in range(2):
                name = f"{fold}-{fold}{target}{k}-A-{target}.wav"
                write_tone(root / "audio" / name, freq * (1 + 0.02 * k), 0.5, seed=fold * 10 + target * 2 + k)
                lines.append(f"{name},{fold},{target},{CLASSES[target]},False,{fold}{target}{k},A")
    (root / "meta").mkdir(parents=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(lines) + "\n")
    opts = {**FAST, "max_epochs": 100}  # 18 train clips: one full-batch step per epoch
    results = run_eval(["logmel"], "esc50", data_root=tmp_path / "data", cache_dir=tmp_path / "cache", **opts)
    (row,) = results["results"]
    assert row["domain"] == "environment" and row["num_classes"] == 50
    assert [f["fold"] for f in row["folds"]] == ["fold1", "fold2", "fold3", "fold4", "fold5"]
    assert all(f["sizes"] == {"train": 18, "valid": 6, "test": 6} for f in row["folds"])
    assert results["aggregates"]["logmel"]["hares"] is None and row["score"] > 70


@pytest.mark.slow
def test_real_tiny_networks_end_to_end(tmp_path, csv_task):
    """Registered networks (random init and a checkpoint) through the whole pipeline."""
    from hares.models import create_model, save_checkpoint

    save_checkpoint(create_model("sf_nfnet_tiny"), tmp_path / "tiny.safetensors")
    encoders = ["random:sf_nfnet_micro", f"ckpt=sf_nfnet_tiny:{tmp_path / 'tiny.safetensors'}"]
    results = run_eval(encoders, [f"csv:{csv_task}"], out=tmp_path / "out", cache_dir=tmp_path / "cache", **FAST)
    assert [r["encoder"] for r in results["results"]] == ["random:sf_nfnet_micro", "ckpt"]
    assert results["encoders"]["ckpt"]["embed_dim"] == 1152 and all(r["score"] > 0 for r in results["results"])


def test_a_one_class_test_split_fails_clearly_before_any_probe(tmp_path, csv_task, monkeypatch):
    rows = csv_task.read_text().splitlines()
    kept = [r for r in rows[1:] if not (r.endswith(",test") and not r.split(",")[1] == "low")]
    csv_task.write_text("\n".join([rows[0], *kept]) + "\n")  # test split: only "low" clips

    def no_probe(*args, **kwargs):
        raise AssertionError("a probe was trained")

    monkeypatch.setattr("hares.evaluate.run.train_probe", no_probe)
    with pytest.raises(ValueError, match="csv:task: every test clip has the same class"):
        run_eval(["logmel"], [f"csv:{csv_task}"], cache_dir=tmp_path / "cache", **FAST)
