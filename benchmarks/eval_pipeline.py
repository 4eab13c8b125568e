"""Evaluation pipeline benchmark: extraction clips/s end to end, and the grid probe against scikit-learn.

1. Extraction: a task of `--clips` clips of `--seconds` s (16 kHz wav written to a temp folder), embedded through
   `hares.evaluate.extract` (parallel decoding, frontend, network, float16 shards) with `logmel` and with a tiny
   network (`--net`, random init, on the first `--net-clips` clips). Reference in the same process: decoding
   alone (`load_audio` over the same files, one process).
   Then the pipeline against the bare network (`--big-net`, default sf_nfnet_f0, random init): `extract` over
   `--big-clips` clips of `--big-seconds` s against `encoder.embed_logmel` on log-mels already in memory, same
   batch and torch threads, in alternating rounds (fresh cache each round); the ratio is the share of the
   network's own throughput that `hares eval` keeps (issue 14: >= 85%).
2. Probe: synthetic embeddings (`--n` train x `--dim`, 50 classes, valid and test `--n // 10` each). The hares
   linear probe of protocol v2 (full-batch preconditioned L-BFGS along the L2 grid, chosen on validation; once per
   `--tol`, default the pinned 1e-5, and once without the preconditioner unless `--no-plain`) against
   scikit-learn `LogisticRegression` (lbfgs, same objective, tolerance `--sk-tol`, `--sk-iter` iterations at most)
   fitted once per C = 1 / (l2 N) over the same L2 points the hares path walked (the same selection), the C
   chosen on validation (and over `--sk-c` if given). Time and test accuracy of both, and the hares path's
   matmul FLOPs at this machine's measured float32 matmul rate (its compute bound). For a fair comparison unset
   `OPENBLAS_CORETYPE` and `OPENBLAS_L2_SIZE` (they slow numpy's BLAS, which scikit-learn uses; torch uses MKL).

    python benchmarks/eval_pipeline.py                    # the issue's sizes (2,000 x 5 s; 50,000 x 3456)
    python benchmarks/eval_pipeline.py --n 20000 --clips 500   # scaled down
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import soundfile as sf
import torch


def make_clips(folder: Path, count: int, seconds: float, seed: int = 0) -> list:
    from hares.data.manifest import Clip

    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * 16000)) / 16000
    clips = []
    for i in range(count):
        wav = 0.2 * np.sin(2 * np.pi * rng.uniform(100, 4000) * t) + 0.05 * rng.standard_normal(t.shape)
        path = folder / f"clip{i:05d}.wav"
        sf.write(str(path), wav.astype(np.float32), 16000, subtype="PCM_16")
        clips.append(Clip(str(path), (str(i % 10),), "train"))
    return clips


def bench_extraction(args: argparse.Namespace) -> None:
    from hares.audio import load_audio
    from hares.evaluate import extract, load_encoder

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = make_clips(tmp, args.clips, args.seconds)
        t0 = time.perf_counter()
        for c in clips:
            load_audio(c.path)
        decode = len(clips) / (time.perf_counter() - t0)
        print(
            f"extraction: {len(clips)} clips x {args.seconds:g} s, {args.workers} decoding workers, batch {args.batch}"
        )
        print(f"  decode only, 1 process (reference)       {decode:8.1f} clips/s  1.00x")
        runs = [("logmel", "logmel", clips), (args.net, f"random:{args.net}", clips[: args.net_clips])]
        for name, spec, subset in runs:
            encoder = load_encoder(spec)
            t0 = time.perf_counter()
            extract(encoder, subset, tmp / "cache", batch_size=args.batch, num_workers=args.workers, progress=False)
            rate = len(subset) / (time.perf_counter() - t0)
            label = f"{name} ({encoder.embed_dim}-d), {len(subset)} clips"
            print(f"  extract {label:33s} {rate:8.1f} clips/s  {rate / decode:.2f}x")
            t0 = time.perf_counter()
            extract(encoder, subset, tmp / "cache", progress=False)
            print(f"    rerun on the finished cache: {1000 * (time.perf_counter() - t0):.0f} ms (nothing recomputed)")


def bench_network_vs_pipeline(args: argparse.Namespace) -> None:
    import statistics

    from hares.audio import LogMel
    from hares.evaluate import extract, load_encoder

    encoder = load_encoder(f"random:{args.big_net}")
    n, batch = args.big_clips, args.batch
    print(f"pipeline vs bare network: {args.big_net}, {n} clips x {args.big_seconds:g} s, batch {batch}, "
          f"{torch.get_num_threads()} torch thread(s), {args.workers} decoding worker(s), load average "
          f"{os.getloadavg()[0]:.1f}")  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        clips = make_clips(tmp, n, args.big_seconds, seed=1)
        logmel = LogMel()(0.1 * torch.randn(batch, int(args.big_seconds * 16000)))  # (B, 1, T, 80)

        def bare() -> float:
            t0 = time.perf_counter()
            with torch.inference_mode():
                for _ in range(n // batch):
                    encoder.embed_logmel(logmel)
            return (n // batch) * batch / (time.perf_counter() - t0)

        def pipeline(r: int) -> float:
            t0 = time.perf_counter()
            extract(encoder, clips, tmp / f"cache{r}", batch_size=batch, num_workers=args.workers, progress=False)
            return n / (time.perf_counter() - t0)

        bare()  # warm-up
        rates = [(bare(), pipeline(r)) for r in range(args.rounds)]
    ratios = [p / b for b, p in rates]
    print(f"  bare network (embed_logmel on log-mels in memory)  {statistics.median(b for b, _ in rates):7.2f} clips/s")
    print(f"  hares extract (decode, log-mel, network, shards)   {statistics.median(p for _, p in rates):7.2f} clips/s")
    print(
        f"  pipeline / bare: {statistics.median(ratios):.3f} (median of {len(ratios)} rounds: "
        f"{', '.join(f'{r:.3f}' for r in ratios)})"
    )


def synthetic_embeddings(n: int, dim: int, classes: int, seed: int = 0):
    """Classes as Gaussians in a 64-d latent space, mapped to `dim` features plus isotropic noise."""
    rng = np.random.default_rng(seed)
    latent_means = rng.normal(size=(classes, 64)) * 0.3
    mixing = rng.normal(size=(64, dim)) / 8.0
    scale = rng.uniform(0.2, 3.0, dim).astype(np.float32)
    out = []
    for m in (n, n // 10, n // 10):
        y = rng.integers(0, classes, m)
        z = latent_means[y] + rng.normal(size=(m, 64))
        x = (z @ mixing + rng.normal(size=(m, dim))).astype(np.float32) * scale + 1.0
        out.append((x, y))
    return out


def matmul_gflops(n: int = 2048, repeat: int = 3) -> float:
    """This machine's float32 matmul rate (n^3, best of `repeat`), torch's threads."""
    a, b = torch.randn(n, n), torch.randn(n, n)
    best = np.inf
    for _ in range(repeat + 1):
        t0 = time.perf_counter()
        a @ b
        best = min(best, time.perf_counter() - t0)
    return 2 * n**3 / best / 1e9


def _hares_probe(splits, cfg) -> tuple[dict, float]:
    from hares.evaluate.probe import ArrayRows, train_probe

    rows = [(ArrayRows(x), torch.from_numpy(y)) for x, y in splits]
    t0 = time.perf_counter()
    res = train_probe(*rows, num_classes=50, cfg=cfg)
    return res, time.perf_counter() - t0


def bench_probe(args: argparse.Namespace) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from hares.evaluate.probe import ProbeConfig

    splits = synthetic_embeddings(args.n, args.dim, 50)
    (xtr, ytr), (xva, yva), (xte, yte) = splits
    n = len(xtr)
    print(f"probe: {n} train x {args.dim} (valid {len(xva)}, test {len(xte)}), 50 classes, "
          f"{torch.get_num_threads()} thread(s)")  # fmt: skip
    from torch.optim.lbfgs import _strong_wolfe  # noqa: F401  torch.optim's one-time import (~2 s), not timed

    rate = matmul_gflops()
    print(f"  float32 matmul (2048^3): {rate:.1f} GFLOP/s")
    walked, ours = None, {}
    variants = [(tol, True) for tol in args.tol] + ([(args.tol[0], False)] if not args.no_plain else [])
    for tol, precondition in variants:
        cfg = ProbeConfig(seeds=tuple(range(args.seeds)), lbfgs_tol=tol, lbfgs_precondition=precondition)
        res, sec = _hares_probe(splits, cfg)
        s0 = res["seeds"][0]
        evals = s0["lbfgs_evaluations"]
        gflop = evals * 4 * n * args.dim * 50 / 1e9  # x @ W^T and dlogits^T @ x per evaluation
        name = f"tol {tol:g}, {'preconditioned' if precondition else 'no preconditioner'}"
        print(f"  hares L-BFGS, {name}: {sec:7.1f} s, test {100 * res['test']:.2f}%, picked l2 {s0['l2']:g}, "
              f"{s0['lbfgs_iterations']} iterations, {evals} evaluations = {gflop:.0f} GFLOP = {gflop / rate:.1f} s at "
              f"the matmul rate ({gflop / rate / sec:.0%} of the time)")  # fmt: skip
        print("    path (l2: iterations, evaluations, valid %): " + ", ".join(
              f"{p['l2']:g}: {p['iterations']}, {p['evaluations']}, {100 * p['valid']:.2f}"
              for p in s0["grid_valid"]))  # fmt: skip
        ours[name] = (res["test"], sec)
        walked = walked or [p["l2"] for p in s0["grid_valid"]]
    if args.adam:
        res, sec = _hares_probe(splits, ProbeConfig(seeds=tuple(range(args.seeds)), linear_solver="adam"))
        picks = [(s["lr"], s["weight_decay"], s["best_epoch"], s["epochs_run"]) for s in res["seeds"]]
        print(f"  hares Adam grid (linear_solver=adam): {sec:7.1f} s, test {100 * res['test']:.2f}%, "
              f"(lr, wd, best epoch, epochs run) {picks}")  # fmt: skip

    warnings.filterwarnings("ignore", message="lbfgs failed to converge")
    scaler = StandardScaler().fit(xtr)
    xtr_s, xva_s, xte_s = (scaler.transform(x) for x in (xtr, xva, xte))
    grids = {"the hares path's L2 points": [1 / (l2 * n) for l2 in walked]}
    if args.sk_c:
        grids["C in --sk-c"] = args.sk_c
    for sk_tol in args.sk_tol:
        for name, cs in grids.items():
            t0 = time.perf_counter()
            fits = []
            for c in cs:
                t1 = time.perf_counter()
                model = LogisticRegression(C=c, tol=sk_tol, max_iter=args.sk_iter).fit(xtr_s, ytr)
                fits.append((model.score(xva_s, yva), -c, model.score(xte_s, yte), time.perf_counter() - t1,
                             model.n_iter_[0]))  # fmt: skip
                valid, _, test, sec, iters = fits[-1]
                print(f"    sklearn C={c:.3g} (l2 {1 / (c * n):.3g}), tol {sk_tol:g}: {sec:.1f} s, {iters} iterations, "
                      f"valid {100 * valid:.2f}%, test {100 * test:.2f}%")  # fmt: skip
            sk = time.perf_counter() - t0 + 0.0
            best = max(fits)  # ties: the smaller C (stronger L2), as the hares path
            print(f"  sklearn LogisticRegression (lbfgs, tol {sk_tol:g}, max_iter {args.sk_iter}), {name}, chosen on "
                  f"valid (C={-best[1]:.3g}): {sk:7.1f} s, test {100 * best[2]:.2f}%")  # fmt: skip
            for ours_name, (acc, sec) in ours.items():
                gap = 100 * (acc - best[2])
                print(f"    hares {ours_name}: {sk / sec:.2f}x faster, test accuracy {gap:+.2f} points")


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--clips", type=int, default=2000)
    p.add_argument("--seconds", type=float, default=5.0)
    p.add_argument("--net", default="sf_nfnet_micro", help="tiny network (random init)")
    p.add_argument("--net-clips", type=int, default=2000)
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1))
    p.add_argument("--big-net", default="sf_nfnet_f0", help="network for the pipeline-vs-bare comparison")
    p.add_argument("--big-clips", type=int, default=64)
    p.add_argument("--big-seconds", type=float, default=3.0)
    p.add_argument("--rounds", type=int, default=3, help="alternating rounds of the pipeline-vs-bare comparison")
    p.add_argument("--skip-big", action="store_true", help="skip the pipeline-vs-bare comparison")
    p.add_argument("--batch", type=int, default=32)
    p.add_argument("--n", type=int, default=50000)
    p.add_argument("--dim", type=int, default=3456)
    p.add_argument("--seeds", type=int, default=1)
    p.add_argument("--tol", type=float, nargs="+", default=[1e-5], help="hares L-BFGS tolerances to run")
    p.add_argument("--no-plain", action="store_true", help="skip the L-BFGS run without the preconditioner")
    p.add_argument("--adam", action="store_true", help="also the Adam grid (linear_solver=adam)")
    p.add_argument("--sk-c", type=float, nargs="*", default=[], help="also sklearn over these C values")
    p.add_argument("--sk-iter", type=int, default=1000)
    p.add_argument("--sk-tol", type=float, nargs="+", default=[1e-4], help="scikit-learn tolerances (its default 1e-4)")
    p.add_argument("--threads", type=int, default=None, help="torch and BLAS threads (default: torch's)")
    p.add_argument("--skip-extraction", action="store_true")
    p.add_argument("--skip-probe", action="store_true")
    args = p.parse_args()
    from threadpoolctl import threadpool_limits

    if args.threads:
        torch.set_num_threads(args.threads)
    with threadpool_limits(torch.get_num_threads()):  # sklearn's BLAS gets as many threads as torch
        if not args.skip_extraction:
            bench_extraction(args)
        if not args.skip_big:
            bench_network_vs_pipeline(args)
        if not args.skip_probe:
            bench_probe(args)


if __name__ == "__main__":
    main()
