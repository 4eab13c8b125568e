"""Manifests are checked (issue 15, failure 6): duplicate rows name their lines, non-UTF-8 files are named."""

from __future__ import annotations

from pathlib import Path

import pytest

from hares.data.adapters.csv_task import build
from hares.data.manifest import read_manifest
from hares.data.sources import DataError, read_csv_manifest
from hares.tasks import make_task


def _task(root: Path, rows: list[str], name: str = "task.csv", encoding: str = "utf-8") -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for r in rows:
        (root / r.split(",")[0]).touch()
    path = root / name
    path.write_bytes(("path,label,split\n" + "\n".join(rows) + "\n").encode(encoding))
    return path


def test_duplicate_rows_are_an_error_naming_the_lines(tmp_path: Path) -> None:
    rows = [f"c{i}.wav,{'ab'[i % 2]},{('train', 'valid', 'test')[i % 3]}" for i in range(9)]
    path = _task(tmp_path, [*rows, rows[4], rows[7].replace(",b,", ",a,")])  # lines 11, 12 repeat 6, 9 (same split)
    with pytest.raises(ValueError, match=r"2 duplicate row\(s\).*lines 6 and 11: c4.wav; lines 9 and 12: c7.wav"):
        make_task(path).build_manifest(None)
    assert len(make_task(_task(tmp_path, rows, "ok.csv")).build_manifest(None)) == 9


def test_non_utf8_manifests_fail_naming_the_file(tmp_path: Path) -> None:
    path = _task(tmp_path, ["café.wav,a,train", "b.wav,b,valid", "c.wav,a,test"], encoding="latin-1")
    with pytest.raises(ValueError, match=r"task.csv: not UTF-8 text \(byte 0xe9"):
        make_task(path)
    with pytest.raises(ValueError, match="task.csv: not UTF-8 text"):
        build(tmp_path, str(path))
    with pytest.raises(DataError, match="task.csv: not UTF-8 text"):
        read_csv_manifest(path)
    (tmp_path / "m.jsonl").write_bytes('{"path": "caf\xe9.wav"}\n'.encode("latin-1"))
    with pytest.raises(ValueError, match="m.jsonl: not UTF-8 text"):
        read_manifest(tmp_path / "m.jsonl")
