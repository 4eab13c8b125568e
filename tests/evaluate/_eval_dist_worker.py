"""Run by torchrun in tests/evaluate/test_eval_dist.py: `run_eval` on a CSV task with small shards."""

from __future__ import annotations

import json
import os
import sys

from hares.evaluate import run_eval

csv_path, cache, out = sys.argv[1:4]
results = run_eval(["logmel"], [f"csv:{csv_path}"], out=out, cache_dir=cache, shard_size=8, num_workers=0,
                   progress=False, max_epochs=5, seeds=(0,))  # fmt: skip
with open(os.path.join(cache, f"rank{os.environ['RANK']}.json"), "w") as f:
    json.dump(None if results is None else [r["score"] for r in results["results"]], f)
