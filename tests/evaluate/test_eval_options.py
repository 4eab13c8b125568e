"""`hares eval` checks every option before any compute (issue 15, failures 5, 6 and 7): one line, exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from safetensors.torch import save_file

from hares.cli import main
from hares.evaluate.run import Protocol
from hares.models import create_model, save_checkpoint
from hares.schema import OptionError


def _eval(csv: Path, tmp: Path, *extra: str, encoder: str = "logmel") -> list[str]:
    return ["eval", "--encoder", encoder, "--tasks", f"csv:{csv}", "--out", str(tmp / "out"), "--cache-dir",
            str(tmp / "cache"), "--workers", "0", "--no-progress", *extra]  # fmt: skip


def _nothing_embedded(tmp: Path) -> bool:
    return not (tmp / "cache").exists() or not any((tmp / "cache").iterdir())


BAD_SETS = {
    "max_epochs=2.7": "max_epochs: expected an integer",
    "max_epochs=0": "max_epochs: expected an integer >= 1",
    "max_epochs=-3": "max_epochs: expected an integer >= 1",
    "max_epochs=abc": "max_epochs: expected an integer",
    "seeds=()": "seeds: expected a non-empty tuple",
    "lrs=-1": "lrs[0]: expected a finite number > 0",
    "lrs=nan": "lrs[0]: expected a finite number",
    "lrs=(1e-3,float('nan'))": "lrs[0]: expected a finite number",  # not a literal: a string, refused
    "weight_decays=()": "weight_decays: expected a non-empty tuple",
    "window_s=0": "window_s: expected a finite number >= 0.1",
    "min_last_s=20": "min_last_s (20.0) must not exceed window_s",
    "sample_rate=8000": "'sample_rate' is fixed",
    "pooling=max": "'pooling' is fixed",
    "standardize=none": "'standardize' is fixed",
    "epochs=3": "unknown protocol setting 'epochs'",
    "max_epochs": "expected KEY=VALUE",
}


def test_bad_protocol_settings_fail_in_one_line_before_any_compute(tmp_path: Path, csv_task: Path, capsys) -> None:
    for item, expected in BAD_SETS.items():
        assert main(_eval(csv_task, tmp_path, "--set", item)) == 2, item
        err = capsys.readouterr().err.strip()
        assert err.startswith("hares eval: error: ") and "\n" not in err and expected in err, (item, err)
    assert _nothing_embedded(tmp_path)  # nothing was embedded


def test_protocol_values_are_typed_and_normalised() -> None:
    p = Protocol.with_overrides(lrs=1e-3, max_epochs=5, adam_betas=[0.8, 0.9], window_s=5, batch_size=256)
    assert p.probe.lrs == (1e-3,) and p.probe.adam_betas == (0.8, 0.9) and p.policy.window_s == 5.0
    assert p.probe.batch_size == 256
    with pytest.raises(OptionError, match="adam_betas: expected 2 x"):
        Protocol.with_overrides(adam_betas=(0.9,))


BAD_FLAGS = {
    ("--device", "tpu"): "--device 'tpu': not a device",
    ("--device", "cuda:7"): "--device cuda:7",
    ("--seeds", "0,x"): "--seeds '0,x': expected comma-separated integers",
    ("--batch-size", "0"): "--batch-size 0: must be >= 1",
    ("--workers", "-1"): "--workers -1: must be >= 0",
}


def test_bad_flags_and_outputs_fail_before_any_compute(tmp_path: Path, csv_task: Path, capsys) -> None:
    for flags, expected in BAD_FLAGS.items():
        assert main(_eval(csv_task, tmp_path, *flags)) == 2, flags
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and expected in err, (flags, err)
    (tmp_path / "file").write_text("x")
    args = _eval(csv_task, tmp_path)
    args[args.index("--out") + 1] = str(tmp_path / "file")
    assert main(args) == 2
    assert "--out" in capsys.readouterr().err and (tmp_path / "file").read_text() == "x"
    args[args.index("--out") + 1] = str(tmp_path / "file" / "sub")  # a folder under a file cannot be created
    assert main(args) == 2
    assert "cannot create the folder" in capsys.readouterr().err
    assert _nothing_embedded(tmp_path)


def test_bad_weights_fail_in_one_line_before_any_compute(tmp_path: Path, csv_task: Path, capsys) -> None:
    net = create_model("sf_nfnet_micro")
    state = {k: v.clone() for k, v in net.state_dict().items()}
    key = next(k for k, v in state.items() if v.ndim == 4)
    meta = {"hares_name": "sf_nfnet_micro", "hares_config": "{}"}
    state[key] = state[key].reshape(state[key].shape[0], -1, 1, 1).contiguous()
    save_file(state, str(tmp_path / "reshaped.safetensors"), metadata=meta)
    state = {k: v.clone() for k, v in net.state_dict().items()}
    state[key][0] = float("nan")
    save_file(state, str(tmp_path / "nan.safetensors"), metadata=meta)
    save_checkpoint(net, tmp_path / "good.safetensors")
    cases = {"reshaped": "mis-shaped", "nan": "non-finite"}
    for name, expected in cases.items():
        enc = f"good={tmp_path / 'good.safetensors'}"  # the first encoder is fine: nothing of it may run either
        args = _eval(csv_task, tmp_path, "--encoder", f"{name}={tmp_path / name}.safetensors", encoder=enc)
        assert main(args) == 2, name
        err = capsys.readouterr().err.strip()
        assert "\n" not in err and expected in err and f"{name}.safetensors" in err, err
    assert _nothing_embedded(tmp_path)


def test_a_task_without_test_clips_fails_before_extraction(tmp_path: Path, csv_task: Path, capsys) -> None:
    lines = csv_task.read_text().splitlines()
    (csv_task.parent / "train_only.csv").write_text("\n".join([lines[0], *[ln for ln in lines if ",train" in ln]]))
    assert main(_eval(csv_task.parent / "train_only.csv", tmp_path)) == 2
    err = capsys.readouterr().err
    assert "csv:train_only: no test clips" in err and "train" in err
    assert _nothing_embedded(tmp_path)


def test_probe_batch_size_is_settable_and_skipped_files_are_summarised(tmp_path: Path, csv_task: Path, capsys):
    (csv_task.parent / "high_train_0.wav").write_bytes(b"RIFF not audio")
    args = _eval(csv_task, tmp_path, "--set", "batch_size=256", "--set", "max_epochs=3", "--seeds", "0",
                 "--set", "max_bad_fraction=0.05")  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "csv:task: skipped 1 unreadable file(s)" in out and "high_train_0.wav" in out
    results = json.loads((tmp_path / "out" / "results.json").read_text())
    assert results["protocol"]["probe"]["batch_size"] == 256 and results["protocol"]["probe"]["seeds"] == [0]
