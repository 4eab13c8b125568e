"""Adapter speed on an AudioSet-sized segment list (the largest metadata of the 12 tasks).

Writes a synthetic `unbalanced_train_segments.csv` of N rows (the release's quoting and `#` header) and times:
- reference: `csv.reader` over the lines, doing nothing else (a lower bound for any CSV parse);
- PANNs-style parse (`line.split(', ')`, `items[3].split('"')[1].split(',')`), as in audioset_tagging_cnn;
- `read_segments` (hares), and the whole `get_task("audioset").build_manifest` with the audio index given (every
  clip present, so no folder scan): label check, valid hash, Clip objects, `check_disjoint`.

    python benchmarks/adapters.py [--rows 1000000]
"""

from __future__ import annotations

import argparse
import csv
import resource
import tempfile
import time
from pathlib import Path
from unittest import mock

from hares.data.adapters import audioset
from hares.tasks import get_task

MIDS = [f"/m/0{i:04d}" for i in range(527)]


def write_fixture(root: Path, rows: int) -> None:
    (root / "audio").mkdir()
    (root / "class_labels_indices.csv").write_text(
        "index,mid,display_name\n" + "".join(f'{i},{m},"name {i}, x"\n' for i, m in enumerate(MIDS))
    )
    header = "# Segments csv created\n# num_ytids=0\n# YTID, start_seconds, end_seconds, positive_labels\n"
    for name, n in (("unbalanced_train_segments.csv", rows), ("balanced_train_segments.csv", 0),
                    ("eval_segments.csv", 0)):  # fmt: skip
        with open(root / name, "w") as f:
            f.write(header)
            for i in range(n):
                labels = ",".join(MIDS[(i * 7 + k) % 527] for k in range(1 + i % 4))
                f.write(f'-x{i:09d}, 30.000, 40.000, "{labels}"\n')


def timed(fn):
    """(CPU seconds of this process, result): CPU time, since the dev box's 2 cores are shared."""
    t = time.process_time()
    out = fn()
    return time.process_time() - t, out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=1_000_000)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "AudioSet"
        root.mkdir()
        write_fixture(root, args.rows)
        path = root / "unbalanced_train_segments.csv"

        def reference():
            with open(path, newline="") as f:
                return sum(1 for _ in csv.reader(line for line in f if not line.startswith("#")))

        def panns():
            out = []
            with open(path) as f:
                for line in f.readlines()[3:]:
                    items = line.split(", ")
                    out.append((items[0], items[3].split('"')[1].split(",")))
            return out

        t_ref, n = timed(reference)
        t_panns, _ = timed(panns)
        t_read, rows = timed(lambda: audioset.read_segments(path))
        index = {f"-x{i:09d}": f"/a/-x{i:09d}.flac" for i in range(args.rows)}
        with mock.patch.object(audioset, "index_audio", return_value=index):
            t_build, clips = timed(lambda: get_task("audioset").build_manifest(root.parent))
    assert n == len(rows) == len(clips) == args.rows
    print(f"rows: {args.rows:,} (CPU seconds)")
    print(f"csv.reader only (reference):   {t_ref:6.2f} s  1.00x")
    print(f"PANNs split parse:              {t_panns:6.2f} s  {t_panns / t_ref:.2f}x")
    print(f"hares read_segments:            {t_read:6.2f} s  {t_read / t_ref:.2f}x")
    print(f"hares build_manifest (no scan): {t_build:6.2f} s  {t_build / t_ref:.2f}x")
    print(f"peak RSS: {resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024:.0f} MB")


if __name__ == "__main__":
    main()
