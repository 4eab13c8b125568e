"""What the hardening checks (issue 15) cost, measured against the work they guard, side by side in one run.

1. Checkpoint loading: `load_checkpoint` (schema check, meta-device build, header shapes, finite scan) vs the
   unchecked path it replaced (`create_model` + `load_file` + `load_state_dict`), for a Slowfast NFNet.
2. The embedding cache's file identities: one `stat` per file (`file_identities`) vs reading every file's
   header for the processing order (`processing_order`, what a cache miss does anyway) and vs decoding them.

    python benchmarks/checks.py [--model sf_nfnet_f0] [--files 3000]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import torch
from encoders import best_time  # benchmarks/encoders.py: warm-up, then the best of `repeats`


def best(fn, repeat: int = 2) -> float:
    return best_time(fn, repeat)


def bench_checkpoint(name: str) -> None:
    from safetensors.torch import load_file

    from hares.models import create_model, load_checkpoint, save_checkpoint

    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.safetensors"
        save_checkpoint(create_model(name), path)

        def unchecked():
            model = create_model(name)
            model.load_state_dict(load_file(str(path)), strict=True)

        ref, new = best(unchecked), best(lambda: load_checkpoint(path))
        print(f"load {name}: unchecked {ref * 1e3:.0f} ms, load_checkpoint {new * 1e3:.0f} ms ({new / ref:.2f}x)")


def bench_identities(n: int) -> None:
    from hares.audio import load_audio
    from hares.data.manifest import Clip
    from hares.evaluate.cache_files import file_identities
    from hares.evaluate.embed import processing_order

    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "fsdd" / "recordings"
    files = sorted(root.glob("*.wav"))[:n]
    clips = [Clip(str(f), ("x",), "train") for f in files]
    ids = best(lambda: file_identities(clips))
    order = best(lambda: processing_order(clips))
    t = time.perf_counter()
    for c in clips[:300]:
        load_audio(c.path)
    decode = (time.perf_counter() - t) / min(300, len(clips)) * len(clips)
    print(
        f"{len(clips)} files: file_identities {ids * 1e3:.0f} ms, processing_order (header reads) "
        f"{order * 1e3:.0f} ms ({ids / order:.2f}x), decoding all (extrapolated from 300) {decode * 1e3:.0f} ms "
        f"({ids / decode:.3f}x)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default="sf_nfnet_f0")
    p.add_argument("--files", type=int, default=3000)
    args = p.parse_args()
    torch.set_num_threads(2)
    bench_checkpoint(args.model)
    bench_identities(args.files)


if __name__ == "__main__":
    main()
