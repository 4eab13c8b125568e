"""`torchrun --nproc_per_node=2 ... hares eval`: ranks share the extraction, rank 0 probes and reports."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from hares.evaluate import run_eval
from hares.evaluate.embed import EmbeddingCache

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_two_gloo_ranks_shard_extraction_and_rank0_reports(tmp_path, csv_task):
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
           "OMP_NUM_THREADS": "1"}  # fmt: skip
    cache, out = tmp_path / "cache", tmp_path / "out"
    cache.mkdir()
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
           str(Path(__file__).parent / "_eval_dist_worker.py"), str(csv_task), str(cache), str(out)]  # fmt: skip
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    assert json.loads((cache / "rank1.json").read_text()) is None  # only rank 0 probes and reports
    scores = json.loads((cache / "rank0.json").read_text())
    assert (out / "report.md").exists() and json.loads((out / "results.json").read_text())["extraction_ranks"] == 2

    (entry,) = [p for p in cache.iterdir() if (p / "meta.json").exists()]
    writers = [json.loads(p.read_text())["rank"] for p in sorted(entry.glob("shard-*.json"))]
    assert writers == [0, 1, 0, 1, 0, 1, 0, 1, 0]  # 72 clips in shards of 8: shard s by rank s % 2

    single = run_eval(["logmel"], [f"csv:{csv_task}"], cache_dir=tmp_path / "single", shard_size=8, num_workers=0,
                      progress=False, max_epochs=5, seeds=(0,))  # fmt: skip
    assert [r["score"] for r in single["results"]] == scores
    (alone,) = [p for p in (tmp_path / "single").iterdir() if (p / "meta.json").exists()]
    np.testing.assert_array_equal(EmbeddingCache(entry).take(range(72)), EmbeddingCache(alone).take(range(72)))
