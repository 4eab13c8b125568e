"""Frontend throughput: decode + resample + log-mel, hares vs librosa computing the same features.

Writes `--clips` 3 s clips at 44.1 kHz (wav, 16-bit) to a temporary folder, then times, in this one process:
  hares:   `load_audio` in a thread pool (soundfile + soxr HQ release the GIL) and `LogMel` on batches of 64;
  librosa: `librosa.load(sr=16000, res_type="soxr_hq")` and `librosa.feature.melspectrogram` (same STFT framing,
           HTK mel 60-7800 Hz, magnitude) + log, one clip at a time as librosa works.
Prints clips/s, real-time factor (audio seconds per wall second) and the ratio, for the whole pipeline and for the
feature step alone. Usage: python benchmarks/frontend.py [--clips 256] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch

from hares.audio import LogMel, load_audio

SECONDS, SOURCE_SR, BATCH = 3.0, 44100, 64


def librosa_logmel(y: np.ndarray) -> np.ndarray:
    """The same features with librosa: same framing, magnitude, HTK mel 60-7800 Hz, natural log."""
    import librosa

    m = librosa.feature.melspectrogram(
        y=y, sr=16000, n_fft=512, hop_length=160, win_length=400, center=False, power=1.0,
        n_mels=80, fmin=60, fmax=7800, htk=True, norm=None,
    )  # fmt: skip
    return np.log(np.maximum(m, 1e-5))


def hares_features(files: list[Path], threads: int, frontend: LogMel) -> float:
    t0 = time.perf_counter()
    with ThreadPoolExecutor(threads) as pool, torch.inference_mode():
        for i in range(0, len(files), BATCH):
            wavs = list(pool.map(load_audio, files[i : i + BATCH]))
            frontend(torch.from_numpy(np.stack(wavs)))
    return time.perf_counter() - t0


def librosa_features(files: list[Path]) -> float:
    import librosa

    t0 = time.perf_counter()
    for f in files:
        y, _ = librosa.load(f, sr=16000, res_type="soxr_hq")
        librosa_logmel(y)
    return time.perf_counter() - t0


def feature_only(n: int) -> tuple[float, float, float]:

    wavs = np.random.default_rng(0).uniform(-0.5, 0.5, (n, int(SECONDS * 16000))).astype(np.float32)
    times = []
    for frontend in (LogMel(), LogMel(dtype=torch.float32)):
        t0 = time.perf_counter()
        with torch.inference_mode():
            for i in range(0, n, BATCH):
                frontend(torch.from_numpy(wavs[i : i + BATCH]))
        times.append(time.perf_counter() - t0)
    t0 = time.perf_counter()
    for y in wavs:
        librosa_logmel(y)
    return times[0], times[1], time.perf_counter() - t0


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--threads", type=int, default=os.cpu_count() or 1)
    args = ap.parse_args()
    print(
        f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, torch {torch.__version__}, "
        f"torch threads {torch.get_num_threads()}, decode threads {args.threads}"
    )
    rng = np.random.default_rng(0)
    with tempfile.TemporaryDirectory() as d:
        files = []
        for i in range(args.clips):
            f = Path(d) / f"clip{i:04d}.wav"
            sf.write(f, rng.uniform(-0.5, 0.5, int(SECONDS * SOURCE_SR)).astype(np.float32), SOURCE_SR, "PCM_16")
            files.append(f)
        exact, fast = LogMel(), LogMel(dtype=torch.float32)
        hares_features(files[:BATCH], args.threads, exact)  # warm-up
        librosa_features(files[:4])
        ours = hares_features(files, args.threads, exact)
        ours32 = hares_features(files, args.threads, fast)
        ref = librosa_features(files)
    audio_s = args.clips * SECONDS
    print(f"decode+resample({SOURCE_SR}->16000)+log-mel, {args.clips} clips of {SECONDS:.0f} s, batch {BATCH}:")
    for name, t in (("hares (float64 STFT)", ours), ("hares (float32 STFT)", ours32), ("librosa", ref)):
        print(f"  {name:21s} {args.clips / t:8.1f} clips/s  RTF {audio_s / t:8.1f}x  ratio to librosa {ref / t:.2f}x")
    f64, f32, ref_f = feature_only(args.clips)
    print("log-mel only (waveforms in memory):")
    for name, t in (("hares (float64 STFT)", f64), ("hares (float32 STFT)", f32), ("librosa", ref_f)):
        print(f"  {name:21s} {args.clips / t:8.1f} clips/s  ratio to librosa {ref_f / t:.2f}x")


if __name__ == "__main__":
    main()
