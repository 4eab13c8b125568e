"""Files are created with the user's umask (issue 15, failure 8), not mkstemp's private 0600."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import numpy as np
import pytest
import torch

from hares.io import atomic_path, check_output_dir, write_json


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


@pytest.mark.parametrize("umask", [0o022, 0o002, 0o077])
def test_atomic_writes_follow_the_umask(tmp_path: Path, umask: int) -> None:
    from hares.evaluate.embed import _save_npy
    from hares.models import create_model, save_checkpoint

    old = os.umask(umask)
    try:
        write_json(tmp_path / "report.json", {"a": 1})
        _save_npy(tmp_path / "shard-00000.npy", np.zeros((2, 3), np.float16))
        torch.manual_seed(0)
        save_checkpoint(create_model("sf_nfnet_micro"), tmp_path / "encoder.safetensors")
        with atomic_path(tmp_path / "x.bin") as tmp:
            tmp.write_bytes(b"x")
    finally:
        os.umask(old)
    for name in ("report.json", "shard-00000.npy", "encoder.safetensors", "x.bin"):
        assert _mode(tmp_path / name) == 0o666 & ~umask, name
    assert not list(tmp_path.glob(".*.tmp"))


def test_output_dir_check(tmp_path: Path) -> None:
    assert check_output_dir(tmp_path / "a" / "b").is_dir()
    (tmp_path / "f").write_text("x")
    with pytest.raises(ValueError, match="exists and is not a folder"):
        check_output_dir(tmp_path / "f")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        with pytest.raises(ValueError, match="not writable"):
            check_output_dir(ro)
