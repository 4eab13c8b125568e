"""Run folders are owned (issue 15, failures 1 and 2): no run is destroyed by a re-run, `--resume` checks what it
continues, rotation keeps the newest checkpoints by step, and a torn metrics row cannot break a resume."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import torch

import hares.train.loop as loop
from hares.cli import main
from hares.train.checkpoint import RunFolderError, capture_rng, latest_checkpoint, save_training_state
from hares.train.config import get_preset

TINY = dict(model="train_test_tiny", proj_hidden=16, proj_dim=8, progress=False, crop_seconds=0.5, num_workers=0)


def _cfg(data: Path, out: Path, **kw):
    return get_preset("debug", data=str(data), out=str(out), **{"batch_size": 4, **TINY, **kw})


def _cli(tone_folder: Path, out: Path, *extra: str) -> list[str]:
    sets = ["--set", "model=train_test_tiny", "--set", "proj_hidden=16", "--set", "crop_seconds=0.5"]
    return ["pretrain", "--data", str(tone_folder), "--out", str(out), "--no-progress", "--batch-size", "4", *sets,
            *extra]  # fmt: skip


def test_rerun_without_resume_refuses_and_keeps_the_trained_model(tmp_path: Path, tone_folder: Path, capsys) -> None:
    out = tmp_path / "run"
    assert main(_cli(tone_folder, out, "--steps", "12")) == 0
    encoder = (out / "encoder.safetensors").read_bytes()
    metrics = (out / "metrics.jsonl").read_text()
    capsys.readouterr()

    assert main(_cli(tone_folder, out, "--steps", "3")) == 2  # failure 1: this used to replace the 12-step run
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "--resume" in err and "--overwrite" in err and "step 12" in err, err
    assert (out / "encoder.safetensors").read_bytes() == encoder and (out / "metrics.jsonl").read_text() == metrics
    assert latest_checkpoint(out).name == "step_00000012"

    bad_data = _cli(tmp_path / "no_such_data", out, "--steps", "3", "--overwrite")
    assert main(bad_data) == 2 and (out / "encoder.safetensors").read_bytes() == encoder  # data checked first
    assert main(_cli(tone_folder, out, "--steps", "3", "--overwrite")) == 0  # asked for explicitly: a fresh run
    assert latest_checkpoint(out).name == "step_00000003"
    assert [json.loads(r)["step"] for r in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2, 3]
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["latest", "step_00000003"]
    assert main(_cli(tone_folder, out, "--steps", "4", "--resume", "--overwrite")) == 2


def test_rotation_keeps_the_newest_by_step_and_never_the_one_just_written(tmp_path: Path) -> None:
    model = torch.nn.Linear(2, 2)
    opt = torch.optim.Adam(model.parameters())
    for step in (9, 100, 90, 30):  # 30 is written last: name order would delete it at once
        final = save_training_state(tmp_path, step, model, opt, [capture_rng()], {"config": {}}, keep=2)
        assert final.is_dir()
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_00000030", "step_00000100"]
    assert latest_checkpoint(tmp_path).name == "step_00000030"
    save_training_state(tmp_path, 100_000_000, model, opt, [capture_rng()], {"config": {}}, keep=2)  # 9 digits
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*")) == ["step_00000100", "step_100000000"]


@pytest.mark.parametrize("folder", ["missing", "empty", "foreign"])
def test_resume_refuses_a_folder_without_a_hares_run(tmp_path: Path, tone_folder: Path, folder: str) -> None:
    out = tmp_path / folder
    if folder != "missing":
        out.mkdir()
    if folder == "foreign":
        (out / "config.json").write_text('{"name": "someone else\'s"}')
    before = sorted(p.name for p in out.iterdir()) if out.exists() else None
    with pytest.raises(RunFolderError, match="cannot resume .* without --resume"):
        loop.pretrain(_cfg(tone_folder, out, steps=2, resume=True))
    assert (sorted(p.name for p in out.iterdir()) if out.exists() else None) == before  # nothing written


def test_resume_refuses_other_data_and_lists_every_change(tmp_path: Path, tone_folder: Path) -> None:
    out = tmp_path / "run"
    loop.pretrain(_cfg(tone_folder, out, steps=2))
    saved = (out / "config.json").read_text()
    other = tmp_path / "other"
    shutil.copytree(tone_folder, other)
    with pytest.raises(RunFolderError, match="data: ") as e:
        loop.pretrain(_cfg(other, out, steps=3, resume=True))
    with pytest.raises(RunFolderError) as e:
        loop.pretrain(_cfg(tone_folder, out, steps=3, resume=True, objective="byola", model_kwargs={"width": 8}))
    assert "objective: 'simclr' -> 'byola'" in str(e.value) and "model_kwargs: {} -> {'width': 8}" in str(e.value)
    (tone_folder / "class0" / "clip00.wav").unlink()  # same path, different contents
    with pytest.raises(RunFolderError, match="data contents"):
        loop.pretrain(_cfg(tone_folder, out, steps=3, resume=True))
    assert (out / "config.json").read_text() == saved  # the record of what the first steps used is intact


def test_a_torn_metrics_row_does_not_break_resume(tmp_path: Path, tone_folder: Path) -> None:
    out = tmp_path / "run"
    loop.pretrain(_cfg(tone_folder, out, steps=2, ckpt_every=2, log_every=1))
    with open(out / "metrics.jsonl", "a") as f:
        f.write('{"step": 3, "loss": 1.2')  # killed mid-write
    with pytest.warns(UserWarning, match="dropped 1 unreadable row"):
        loop.pretrain(_cfg(tone_folder, out, steps=3, ckpt_every=2, log_every=1, resume=True))
    rows = [json.loads(r) for r in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["step"] for r in rows] == [1, 2, 3]


def test_run_files_follow_the_umask(tmp_path: Path, tone_folder: Path) -> None:
    import os
    import stat

    old = os.umask(0o022)
    try:
        loop.pretrain(_cfg(tone_folder, tmp_path / "run", steps=1))
    finally:
        os.umask(old)
    files = [p for p in (tmp_path / "run").rglob("*") if p.is_file()]
    assert len(files) >= 9 and {oct(stat.S_IMODE(p.stat().st_mode)) for p in files} == {"0o644"}


def test_pretrain_cli_errors_are_one_line_with_exit_code_2(tmp_path: Path, tone_folder: Path, capsys) -> None:
    out = tmp_path / "run"
    cases = {
        ("--set", "steps=1.5"): "steps: expected an integer",
        ("--set", "resume=True"): "'resume' is fixed",
        ("--set", "lr=-1"): "lr must be > 0",
        ("--set", "betas=(0.9,)"): "betas must be two numbers",
        ("--set", "model_kwargs={'width': 1000000000}"): "width",
        ("--set", "model_kwargs={'checkpoint_path': '/tmp/x.pth'}"): "unknown key",
        ("--steps", "2", "--resume"): "cannot resume",
        ("--set", "device='tpu'"): "unknown device 'tpu'",
    }
    for extra, expected in cases.items():
        assert main(_cli(tone_folder, out, *extra)) == 2, extra
        err = capsys.readouterr().err.strip()
        assert err.startswith("hares pretrain: error: ") and "\n" not in err and expected in err, (extra, err)
    assert not out.exists()  # nothing was started
    (tmp_path / "file").write_text("x")
    assert main(_cli(tone_folder, tmp_path / "file", "--steps", "1")) == 2
    assert "is not a folder" in capsys.readouterr().err


def test_skipped_files_are_summarised_on_the_console(tmp_path: Path, tone_folder: Path, capsys) -> None:
    (tone_folder / "class2" / "broken.wav").write_bytes(b"RIFF junk")
    with pytest.warns(UserWarning, match="skipping undecodable"):
        loop.pretrain(_cfg(tone_folder, tmp_path / "run", steps=1, batch_size=13))
    assert "skipped 1 undecodable file(s) while training" in capsys.readouterr().out


def test_a_run_saved_before_a_field_existed_resumes_when_the_default_is_kept(tmp_path: Path, tone_folder: Path):
    out = tmp_path / "run"
    loop.pretrain(_cfg(tone_folder, out, steps=2))
    state_path = latest_checkpoint(out) / "state.json"
    state = json.loads(state_path.read_text())
    del state["config"]["mix_p"]  # as if `mix_p` had been added to hares after this run started
    state_path.write_text(json.dumps(state))
    loop.pretrain(_cfg(tone_folder, out, steps=3, resume=True))
    assert latest_checkpoint(out).name == "step_00000003"
    with pytest.raises(RunFolderError, match="mix_p: 1.0 -> 0.5"):
        loop.pretrain(_cfg(tone_folder, out, steps=4, resume=True, mix_p=0.5))
