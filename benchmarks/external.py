"""External-encoder overhead: `hf:` wav2vec 2.0 BASE through hares' extraction against the model called directly.

A randomly initialised wav2vec 2.0 BASE (transformers' default `Wav2Vec2Config`: 12 layers, 768-d, 94.4M
parameters) is written with `save_pretrained` to a temp folder and evaluated offline as `hf:FOLDER`. Clips:
`--clips` synthetic 16 kHz wavs of `--seconds` s. Three paths, timed side by side in the same process, each run
`--repeats` times alternately (the best of each is reported; the machine is shared):

- hares: `extract(load_encoder("hf:FOLDER"), clips, fresh cache)`: decode workers, equal-length batches of
  `--batch`, the model's feature extractor, time-average of the last hidden state, float16 shards on disk;
- direct, batched: `load_audio` each clip, then the feature extractor and the model on batches of `--batch`,
  mean over time (what a user would write to do the same job);
- direct, one clip at a time: the same loop with batch 1 (the plainest user loop).

The embeddings of the paths are compared (max abs difference, float16 cache against float32).

    python benchmarks/external.py                       # 48 clips x 2 s, batch 8, 2 repeats
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np
import torch


def direct(model, extractor, clips, batch: int) -> np.ndarray:
    from hares.audio import load_audio

    out = []
    with torch.no_grad():
        for i in range(0, len(clips), batch):
            wavs = [load_audio(c.path) for c in clips[i : i + batch]]
            inputs = extractor(wavs, sampling_rate=16000, return_tensors="pt")
            out.append(model(**inputs).last_hidden_state.mean(dim=1))
    return torch.cat(out).numpy()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=48)
    p.add_argument("--seconds", type=float, default=2.0)
    p.add_argument("--batch", type=int, default=8)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--repeats", type=int, default=2)
    args = p.parse_args()

    from eval_pipeline import make_clips
    from transformers import Wav2Vec2Config, Wav2Vec2FeatureExtractor, Wav2Vec2Model

    from hares.evaluate import extract, load_encoder

    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads, load average {os.getloadavg()}")
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        Wav2Vec2Model(Wav2Vec2Config()).save_pretrained(tmp / "w2v2")
        Wav2Vec2FeatureExtractor().save_pretrained(tmp / "w2v2")
        clips = make_clips(tmp, args.clips, args.seconds)
        encoder = load_encoder(f"hf:{tmp / 'w2v2'}")
        model = Wav2Vec2Model.from_pretrained(tmp / "w2v2", local_files_only=True).eval()
        extractor = Wav2Vec2FeatureExtractor.from_pretrained(tmp / "w2v2", local_files_only=True)
        params = sum(p.numel() for p in model.parameters())
        print(f"wav2vec 2.0 BASE (random), {params:,} parameters; {len(clips)} clips x {args.seconds:g} s, "
              f"batch {args.batch}, {args.workers} decode worker(s), best of {args.repeats}")  # fmt: skip
        best = {"hares": 0.0, "direct, batched": 0.0, "direct, batch 1": 0.0}
        outputs = {}
        for r in range(args.repeats):
            t0 = time.perf_counter()
            cache = extract(encoder, clips, tmp / f"cache{r}", batch_size=args.batch, num_workers=args.workers,
                            progress=False)  # fmt: skip
            best["hares"] = max(best["hares"], len(clips) / (time.perf_counter() - t0))
            outputs["hares"] = cache.take(np.arange(len(clips))).astype(np.float32)
            for name, batch in (("direct, batched", args.batch), ("direct, batch 1", 1)):
                t0 = time.perf_counter()
                outputs[name] = direct(model, extractor, clips, batch)
                best[name] = max(best[name], len(clips) / (time.perf_counter() - t0))
        ref = best["direct, batched"]
        for name, rate in best.items():
            diff = np.abs(outputs[name] - outputs["direct, batched"]).max()
            print(f"  {name:16s} {rate:7.2f} clips/s  {rate / ref:5.2f}x direct batched   max |diff| {diff:.2e}")


if __name__ == "__main__":
    main()
