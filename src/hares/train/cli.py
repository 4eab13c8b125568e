"""`hares pretrain` and `hares shards`.

hares pretrain --preset debug --data DIR --out runs/x [--steps N] [--resume | --overwrite] [--set lr=3e-4 ...]
torchrun --nproc_per_node=8 -m hares pretrain --preset paper-simclr --data /data/audioset --out runs/simclr
hares shards --data DIR_OR_MANIFEST --out SHARD_DIR [--shard-size 512]
"""

from __future__ import annotations

import argparse
import os


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "pretrain", help="pre-train an encoder (SimCLR, supervised, BYOL-A, CPC, wav2vec 2.0); torchrun for many GPUs"
    )
    p.add_argument(
        "--preset",
        default="debug",
        help="debug, demo, paper-simclr, paper-supervised, paper-byola, debug-cpc, paper-cpc, debug-wav2vec2, "
        "paper-wav2vec2",
    )
    p.add_argument(
        "--data", required=True, help="audio folder, CSV/JSONL manifest, AudioSet root, LibriSpeech or shard folder"
    )
    p.add_argument("--out", required=True, help="run folder (config, metrics.jsonl, checkpoints, encoder)")
    p.add_argument("--steps", type=int, default=None, help="total optimiser steps (overrides the preset)")
    p.add_argument("--objective", default=None, choices=("simclr", "supervised", "byola", "cpc", "wav2vec2"))
    p.add_argument("--model", default=None, help="encoder name (see `hares encoders`)")
    p.add_argument("--batch-size", type=int, default=None, help="global batch (all ranks together)")
    p.add_argument("--num-workers", type=int, default=None, help="data-loading worker processes per rank")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its latest checkpoint")
    p.add_argument("--overwrite", action="store_true", help="replace the run already in --out (deletes it)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    p.add_argument(
        "--set", action="append", default=[], metavar="KEY=VALUE",
        help="override a config field (Python literal: --set lr=3e-4 --set betas=(0.9,0.99)); `--set help` lists them",
    )  # fmt: skip
    p.set_defaults(func=cmd_pretrain)

    s = sub.add_parser("shards", help="write WebDataset tar shards ({key}.flac + {key}.json) from audio data")
    s.add_argument("--data", required=True, help="audio folder, CSV/JSONL manifest or AudioSet root")
    s.add_argument("--out", required=True, help="folder for shard-XXXXXX.tar and shards.json")
    s.add_argument("--shard-size", type=int, default=512, help="clips per shard")
    s.set_defaults(func=cmd_shards)


def cmd_pretrain(args: argparse.Namespace) -> int:
    from hares.train.config import apply_overrides, get_preset, override
    from hares.train.loop import pretrain

    if args.set == ["help"]:
        from hares.schema import fixed_fields, help_text, settable_fields
        from hares.train.config import PretrainConfig

        print(f"hares pretrain --set KEY=VALUE accepts:\n{help_text(settable_fields(PretrainConfig))}")
        print(f"set by their own flags: {', '.join(fixed_fields(PretrainConfig))}")
        return 0
    flags = {
        "data": args.data,
        "out": args.out,
        "steps": args.steps,
        "objective": args.objective,
        "model": args.model,
        "batch_size": args.batch_size,
        "num_workers": args.num_workers,
    }
    cfg = get_preset(args.preset, **{k: v for k, v in flags.items() if v is not None})
    cfg = apply_overrides(cfg, args.set)
    cfg = override(cfg, resume=args.resume, overwrite=args.overwrite, progress=not args.no_progress)
    path = pretrain(cfg)  # bad settings, folders and data raise before any compute; `hares` prints one line
    if os.environ.get("RANK", "0") == "0":
        print(f"encoder checkpoint: {path}")
    return 0


def cmd_shards(args: argparse.Namespace) -> int:
    from hares.data.shards import write_shards
    from hares.data.sources import open_source

    source = open_source(args.data)
    if source.shards:
        raise ValueError(f"{args.data}: is already sharded")
    summary = write_shards(source, args.out, args.shard_size, progress=True)
    print(
        f"{summary['num_samples']} clips in {len(summary['shards'])} shards under {args.out} "
        f"({summary['skipped']} undecodable files skipped)"
    )
    return 0
