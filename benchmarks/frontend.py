"""Frontend throughput: decode + resample + log-mel, hares vs librosa computing the same features, side by side.

Writes `--clips` 3 s clips at 44.1 kHz (wav, 16-bit) to a temporary folder, then times, in this one process and
in alternating rounds (so a change of machine load hits both sides alike; the median round is reported):
  hares:   `load_audio` in a thread pool (soundfile + soxr HQ release the GIL) and `LogMel` (float32 default, and
           the float64 option) on batches of 64;
  librosa: `librosa.load(sr=16000, res_type="soxr_hq")`, then `librosa.stft` (same framing), magnitude, the mel
           basis built once (`librosa.filters.mel`, HTK 60-7800 Hz, no norm) and `np.log(max(., 1e-5))`: per clip
           as librosa works, and batched (`librosa.stft` on a (64, N) array, one matmul), each with numpy's BLAS
           at its default threads and at one thread (whichever is faster is librosa's figure).
The machine sets OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE, which slow numpy's BLAS; the script re-executes itself
without them, so numpy (librosa's matmul, and hares' mel bands) runs at full speed (printed via threadpoolctl).
Prints clips/s, real-time factor and ratios for the log-mel stage alone and end to end, and the compute bound.

    python benchmarks/frontend.py [--clips 256] [--rounds 5] [--threads N]
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

SLOW_BLAS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE")
if any(v in os.environ for v in SLOW_BLAS):  # before numpy loads its BLAS: full speed for both sides
    env = {k: v for k, v in os.environ.items() if k not in SLOW_BLAS}
    os.execve(sys.executable, [sys.executable, *sys.argv], env)

import soundfile as sf  # noqa: E402
import torch  # noqa: E402

from hares.audio import LogMel, load_audio, num_frames  # noqa: E402

SECONDS, SOURCE_SR, BATCH = 3.0, 44100, 64


class Librosa:
    """The same features with librosa: same framing, magnitude, HTK mel 60-7800 Hz (basis built once), log."""

    def __init__(self) -> None:
        import librosa

        self.librosa = librosa
        self.mel = librosa.filters.mel(sr=16000, n_fft=512, n_mels=80, fmin=60, fmax=7800, htk=True, norm=None)
        self.mel = self.mel.astype(np.float32)  # (80, 257)

    def logmel(self, y: np.ndarray) -> np.ndarray:
        """(N,) -> (80, T), or batched (B, N) -> (B, 80, T)."""
        spec = self.librosa.stft(y, n_fft=512, hop_length=160, win_length=400, center=False)
        return np.log(np.maximum(self.mel @ np.abs(spec), 1e-5))

    def load(self, path: Path) -> np.ndarray:
        return self.librosa.load(path, sr=16000, res_type="soxr_hq")[0]


def time_it(fn) -> float:
    t0 = time.perf_counter()
    fn()
    return time.perf_counter() - t0


def hares_logmel(wavs: np.ndarray, frontend: LogMel) -> None:
    with torch.inference_mode():
        for i in range(0, len(wavs), BATCH):
            frontend(torch.from_numpy(wavs[i : i + BATCH]))


def hares_end_to_end(files: list[Path], threads: int, frontend: LogMel) -> None:
    with ThreadPoolExecutor(threads) as pool, torch.inference_mode():
        for i in range(0, len(files), BATCH):
            frontend(torch.from_numpy(np.stack(list(pool.map(load_audio, files[i : i + BATCH])))))


def librosa_end_to_end(files: list[Path], ref: Librosa) -> None:
    for f in files:
        ref.logmel(ref.load(f))


def librosa_batched(wavs: np.ndarray, ref: Librosa) -> None:
    for i in range(0, len(wavs), BATCH):
        ref.logmel(wavs[i : i + BATCH])


def one_blas_thread(fn) -> None:
    """librosa's matmul with numpy's BLAS on one thread: on a loaded machine its 2-thread team can be 5x slower."""
    from threadpoolctl import threadpool_limits

    with threadpool_limits(1, user_api="blas"):
        fn()


def rounds(runs: dict, n: int) -> dict[str, list[float]]:
    """Alternating rounds: every run once per round, in the same order; seconds per round."""
    for fn in runs.values():  # warm-up (librosa's first stft, thread pools, page cache)
        fn()
    out: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(n):
        for name, fn in runs.items():
            out[name].append(time_it(fn))
    return out


def report(title: str, times: dict[str, list[float]], clips: int, ref: str) -> None:
    """Median clips/s per run; ratios are medians of per-round ratios (robust to the load of other jobs) against
    `ref`: per round, the fastest of the librosa runs (its best configuration in that round)."""
    print(title)
    times = {**times, ref: [min(r) for r in zip(*(ts for k, ts in times.items() if k.startswith("librosa")))]}
    for name, ts in times.items():
        rate = clips / statistics.median(ts)
        ratio = statistics.median(r / t for r, t in zip(times[ref], ts))
        lo, hi = min(r / t for r, t in zip(times[ref], ts)), max(r / t for r, t in zip(times[ref], ts))
        print(f"  {name:34s} {rate:8.1f} clips/s  RTF {rate * SECONDS:7.0f}x  vs {ref}: {ratio:5.2f}x "
              f"(rounds {lo:.2f}-{hi:.2f})")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clips", type=int, default=256)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--threads", type=int, default=torch.get_num_threads(), help="torch threads and decode threads")
    args = ap.parse_args()
    from threadpoolctl import threadpool_info

    torch.set_num_threads(args.threads)
    blas = [f"{i['internal_api']} {i.get('architecture', '')} x{i['num_threads']}" for i in threadpool_info()]
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.1f}, torch {torch.__version__} ({args.threads} threads), "
          f"numpy BLAS / OpenMP: {', '.join(blas)}")  # fmt: skip
    ref = Librosa()
    f32, f64 = LogMel(), LogMel(dtype=torch.float64)
    rng = np.random.default_rng(0)
    wavs = rng.uniform(-0.5, 0.5, (args.clips, int(SECONDS * 16000))).astype(np.float32)
    times = rounds(
        {
            "librosa, per clip": lambda: [ref.logmel(y) for y in wavs],
            "librosa, per clip, BLAS 1 thread": lambda: one_blas_thread(lambda: [ref.logmel(y) for y in wavs]),
            "librosa, batched stft": lambda: librosa_batched(wavs, ref),
            "librosa, batched, BLAS 1 thread": lambda: one_blas_thread(lambda: librosa_batched(wavs, ref)),
            "hares float32 (default)": lambda: hares_logmel(wavs, f32),
            "hares float64 (option)": lambda: hares_logmel(wavs, f64),
        },
        args.rounds,
    )
    report(f"log-mel only, {args.clips} clips of {SECONDS:g} s in memory, batch {BATCH}:", times, args.clips,
           "best librosa")  # fmt: skip
    frames = num_frames(int(SECONDS * 16000))
    fft = frames * 2.5 * 512 * np.log2(512)  # real FFT: half of a 512-point complex FFT's 5 N log2 N
    dense, banded = frames * 257 * 80 * 2, frames * sum((b[3] - b[2]) * (b[1] - b[0]) for b in f32._mel_bands()) * 2
    best = clips_s = args.clips / statistics.median(times["hares float32 (default)"])
    print(
        f"  compute per clip: FFT {fft / 1e6:.1f} MFLOP + mel {dense / 1e6:.1f} MFLOP dense "
        f"({banded / 1e6:.1f} MFLOP in hares' bands); hares float32 runs {(fft + banded) * best / 1e9:.1f} GFLOP/s"
    )

    with tempfile.TemporaryDirectory() as d:
        files = []
        for i in range(args.clips):
            f = Path(d) / f"clip{i:04d}.wav"
            sf.write(f, rng.uniform(-0.5, 0.5, int(SECONDS * SOURCE_SR)).astype(np.float32), SOURCE_SR, "PCM_16")
            files.append(f)
        times = rounds(
            {
                "librosa (load + per clip)": lambda: librosa_end_to_end(files, ref),
                "librosa (load + per clip), BLAS 1 thread": lambda: one_blas_thread(
                    lambda: librosa_end_to_end(files, ref)
                ),
                "decode only: librosa.load": lambda: [ref.load(f) for f in files],
                "hares float32 (default)": lambda: hares_end_to_end(files, args.threads, f32),
                "hares float64 (option)": lambda: hares_end_to_end(files, args.threads, f64),
                "decode only (load_audio, 1 thread)": lambda: [load_audio(f) for f in files],
            },
            args.rounds,
        )
    report(f"decode + resample ({SOURCE_SR} -> 16000) + log-mel, {args.clips} wav files, {args.threads} decode "
           "threads:", times, args.clips, "best librosa")  # fmt: skip
    print(f"clips/s at the end: {clips_s:.0f} (log-mel), load average {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
