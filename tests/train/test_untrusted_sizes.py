"""Sizes read from untrusted headers are bounded before anything is allocated (issue 15, failure 9)."""

from __future__ import annotations

import io
import json
import tarfile
import zipfile
from pathlib import Path

import numpy as np
import pytest
from numpy.lib import format as npy

import hares.data.shards as shards
from hares.audio import AudioError
from hares.cli import main
from hares.io import load_npz_checked
from hares.train.data import open_source, write_shards


def test_an_oversized_shard_member_is_never_read(tmp_path: Path, tone_folder: Path, monkeypatch) -> None:
    write_shards(open_source(tone_folder), tmp_path / "shards", shard_size=12)
    shard = next((tmp_path / "shards").glob("*.tar"))
    with tarfile.open(shard) as tar:
        sizes = {m.name: m.size for m in tar}
    big = max(v for k, v in sizes.items() if k.endswith(".flac"))
    monkeypatch.setattr(shards, "MAX_MEMBER_BYTES", big - 1)  # stands in for a 2 GiB member
    reads = []
    real = tarfile.TarFile.extractfile
    monkeypatch.setattr(tarfile.TarFile, "extractfile", lambda self, m: reads.append(m.name) or real(self, m))
    samples = shards.read_shard(str(shard))
    assert len(samples) == 12  # every sample keeps its place in the stream
    oversized = [name for name, d, _ in samples if isinstance(d, int)]
    assert len(oversized) >= 1 and not any(n.split(":")[-1] in reads for n in oversized)
    with pytest.raises(AudioError, match="over the per-member limit"):
        shards.decode_member(oversized[0], next(d for n, d, _ in samples if n == oversized[0]))


def _npz_with_lying_header(path: Path, shape: tuple[int, ...]) -> Path:
    header = io.BytesIO()
    npy.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False, "shape": shape})
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("params/slow_fast_nf_net/~/NFNet/~/stem_conv0/w.npy", header.getvalue() + b"\0" * 64)
    return path


def test_a_crafted_npz_header_cannot_make_convert_haiku_allocate(tmp_path: Path, capsys, monkeypatch) -> None:
    path = _npz_with_lying_header(tmp_path / "evil.npz", (100_000, 100_000))  # claims 40 GB in 100 bytes
    monkeypatch.setattr(np.lib.format, "read_array", lambda *a, **k: pytest.fail("array read before the check"))
    with pytest.raises(ValueError, match=r"claims shape \(100000, 100000\).*holds 64 bytes"):
        load_npz_checked(path)
    assert main(["convert-haiku", str(path), str(tmp_path / "out.safetensors")]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "evil.npz" in err and "claims shape" in err
    honest = _npz_with_lying_header(tmp_path / "honest.npz", (4, 4))  # 64 bytes of float32: consistent
    assert load_npz_checked(honest, max_bytes=64).files == ["params/slow_fast_nf_net/~/NFNet/~/stem_conv0/w"]
    with pytest.raises(ValueError, match="exceed the 63-byte limit"):
        load_npz_checked(honest, max_bytes=63)


def test_an_npz_config_is_validated_before_the_network_is_built(tmp_path: Path, capsys) -> None:
    config = {"pathways": {"x-slow": {"width": [10**6] * 4}, "x-fast": {"width": [8, 8, 8, 8]}}}
    np.savez(tmp_path / "cfg.npz", config_json=np.frombuffer(json.dumps(config).encode(), dtype=np.uint8),
             **{"slow_fast_nf_net/~/NFNet/~/stem_conv0/w": np.zeros((3, 3, 1, 2), np.float32)})  # fmt: skip
    assert main(["convert-haiku", str(tmp_path / "cfg.npz"), str(tmp_path / "out.safetensors")]) == 2
    err = capsys.readouterr().err
    assert "cfg.npz" in err and "width" in err and not (tmp_path / "out.safetensors").exists()
