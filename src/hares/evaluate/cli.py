"""`hares eval` (encoders x tasks -> report) and `hares tasks` (what each task reads and whether it is there)."""

from __future__ import annotations

import argparse
import ast
import sys


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "eval",
        help="evaluate encoders on HARES tasks (linear/MLP probes on cached embeddings) and write a report",
        description="Writes OUT/report.csv, report.md (Table-4 style), report.png and results.json (provenance). "
        "Encoders: [LABEL=]NAME:PATH.safetensors, [LABEL=]random:NAME[@SEED], logmel, hear:MODULE[:WEIGHTS] "
        "(a HEAR 2021 module), hf:PATH_OR_ID[@layer=K] (transformers, offline), py:MODULE:FACTORY; add @layers=all "
        "to a hares network or hf: spec to probe every layer.",
    )
    p.add_argument(
        "--encoder",
        action="append",
        required=True,
        metavar="[LABEL=]SPEC",
        help="repeat for several encoders, e.g. simclr=sf_nfnet_micro:runs/x/encoder.safetensors",
    )
    p.add_argument("--tasks", required=True,
                   help="comma-separated task names, csv:PATH (custom tasks), hear:DIR (HEAR task folders), or all")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (see `hares tasks`)")
    p.add_argument("--out", required=True, help="output folder for the report")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default $HARES_CACHE or ~/.cache/hares)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per encoder batch (default 32)")
    p.add_argument("--workers", type=int, default=2, help="audio decoding workers (default 2)")
    p.add_argument("--seeds", default=None, help="probe seeds, e.g. 0,1,2 (default: the protocol's 3 seeds)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a protocol value, e.g. --set max_epochs=50 --set lrs=(1e-3,)",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.set_defaults(func=cmd_eval)  # fmt: skip

    p = sub.add_parser("tasks", help="list the HARES tasks, the folders each looks for and whether its data is found")
    p.add_argument("--data-root", default=".", help="folder holding the datasets (default: current folder)")
    p.set_defaults(func=cmd_tasks)


def parse_overrides(items: list[str]) -> dict:
    """`KEY=VALUE` strings -> {key: literal value} (strings are kept when not a Python literal)."""
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"--set {item!r}: expected KEY=VALUE")
        try:
            out[key.strip()] = ast.literal_eval(value)
        except (ValueError, SyntaxError):
            out[key.strip()] = value
    return out


def cmd_eval(args: argparse.Namespace) -> int:
    from hares.evaluate.run import BadAudioError, run_eval

    try:
        overrides = parse_overrides(args.set)
        if args.seeds:
            overrides["seeds"] = tuple(int(s) for s in args.seeds.split(","))
        results = run_eval(args.encoder, args.tasks, data_root=args.data_root, out=args.out, cache_dir=args.cache_dir,
                           device=args.device, batch_size=args.batch_size, num_workers=args.workers,
                           progress=not args.no_progress, **overrides)  # fmt: skip
    except (BadAudioError, FileNotFoundError, KeyError, TypeError, ValueError) as e:
        print(f"hares eval: error: {e}", file=sys.stderr)
        return 2
    from hares.evaluate.report import render_markdown

    print(render_markdown(results).split("\n\n## ")[0])
    print(f"\nreport: {args.out}/report.md, report.csv, report.png, results.json")
    return 0


def cmd_tasks(args: argparse.Namespace) -> int:
    from hares.tasks import get_task, list_tasks

    header = f"{'task':24s} {'domain':12s} {'metric':9s} {'classes':>7s}  {'data':8s}"
    print(f"{header} folders looked for (under {args.data_root})")
    for name in list_tasks():
        spec = get_task(name)
        found = spec.locate(args.data_root)
        where = f"found    {found}" if found else "missing  " + ", ".join(spec.folders)
        print(f"{name:24s} {spec.domain:12s} {spec.metric:9s} {spec.num_classes:7d}  {where}")
    print("\ncustom tasks: --tasks csv:PATH (columns path,label|labels[,split,group]); downloads: see each task's url")
    return 0
