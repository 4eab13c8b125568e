"""`hares encoders` and `hares convert-haiku`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from hares.cli import main
from hares.models import load_checkpoint, read_metadata


def test_encoders_lists_counts_and_dims(capsys) -> None:
    assert main(["encoders", "sf_nfnet_*"]) == 0
    out = capsys.readouterr().out
    assert "sf_nfnet_f0" in out and "62,970,654" in out and "3456" in out
    assert main(["encoders", "byola_*", "--json"]) == 0
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert {r["name"]: r["params"] for r in rows} == {"byola_cnn": 5_584_000, "byola_tiny": 19_360}
    assert main(["encoders", "nothing_matches*"]) == 1


def test_convert_haiku_golden_roundtrip(shared_dir, tmp_path, capsys) -> None:
    src = shared_dir / "golden" / "sf_nfnet_tiny.npz"
    if not src.is_file():
        pytest.skip(f"{src} missing")
    out = tmp_path / "tiny.safetensors"
    assert main(["convert-haiku", str(src), str(out)]) == 0
    assert "sf_nfnet_tiny" in capsys.readouterr().out
    assert read_metadata(out)["hares_name"] == "sf_nfnet_tiny"
    model = load_checkpoint(out).eval()
    golden = np.load(src)
    with torch.no_grad():
        y = model(torch.from_numpy(golden["input_2"])[:, None])
    ref = torch.from_numpy(golden["output_2"])
    assert ((y - ref).abs().max() / ref.abs().max()).item() < 1e-5


def test_convert_haiku_rejects_bad_input(tmp_path, capsys) -> None:
    assert main(["convert-haiku", str(tmp_path / "missing.npz"), str(tmp_path / "o.safetensors")]) == 2
    assert "no such file" in capsys.readouterr().err
    bad = tmp_path / "other.npz"
    np.savez(bad, weights=np.zeros(3))
    assert main(["convert-haiku", str(bad), str(tmp_path / "o.safetensors")]) == 2
    assert "no 'slow_fast_nf_net/...' parameters" in capsys.readouterr().err
    wrong = tmp_path / "wrong.npz"
    np.savez(wrong, **{"slow_fast_nf_net/~/NFNet/~/stem_conv0/w": np.zeros((3, 3, 1, 5), np.float32)})
    assert main(["convert-haiku", str(wrong), str(tmp_path / "o.safetensors"), "--model", "sf_nfnet_micro"]) == 2
    assert "missing" in capsys.readouterr().err
    assert not (tmp_path / "o.safetensors").exists()
