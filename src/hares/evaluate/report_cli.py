"""`hares report RUN_DIR... --out DIR` (merge runs into one report, recompute intervals and paired tests) and
`hares references` (the published rows that `--compare` can add)."""

from __future__ import annotations

import argparse
import sys

from hares.evaluate.stats import DEFAULT_RESAMPLES, DEFAULT_SEED


def add_stats_options(p: argparse.ArgumentParser) -> None:
    """--resamples, --stats-seed and --compare, shared by `hares eval` and `hares report`."""
    p.add_argument(
        "--resamples",
        type=int,
        default=DEFAULT_RESAMPLES,
        help=f"bootstrap resamples for intervals and paired tests (default {DEFAULT_RESAMPLES})",
    )
    p.add_argument("--stats-seed", type=int, default=DEFAULT_SEED, help="seed of the bootstrap draws (default 0)")
    p.add_argument("--compare", action="append", default=[], metavar="paper:ROW",
                   help="add a published column, e.g. paper:SF_NFNET_F0 (list: `hares references`)")  # fmt: skip


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "report",
        help="merge evaluation runs into one report (intervals, paired tests, reference columns)",
        description="Reads each RUN_DIR's results.json and predictions/ and writes OUT/report.{csv,md,png}, "
        "paired.{csv,png}, results.json and predictions/ (so OUT is a run folder too). No probe is re-run. "
        "Runs must share every protocol value and have distinct encoder labels.",
    )
    p.add_argument("runs", nargs="+", metavar="RUN_DIR", help="output folders of `hares eval` (or `hares report`)")
    p.add_argument("--out", required=True, help="output folder for the merged report")
    p.add_argument("--allow-protocol-mismatch", action="store_true",
                   help="merge runs whose protocol values differ (the report lists the differences)")  # fmt: skip
    p.add_argument("--device", default="auto", help="where the bootstrap runs: cpu, cuda ... (default: cuda if any)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")
    add_stats_options(p)
    p.set_defaults(func=cmd_report)

    p = sub.add_parser("references", help="list the published rows (paper Tables 2-4) usable with --compare")
    p.set_defaults(func=cmd_references)


def cmd_report(args: argparse.Namespace) -> int:
    from hares.evaluate.merge import merge_runs, write_merged
    from hares.evaluate.references import get_reference
    from hares.evaluate.report import render_markdown, write_report
    from hares.evaluate.run import _resolve_device, finish_results

    try:
        for ref in args.compare:
            get_reference(ref)
        results, predictions = merge_runs(args.runs, allow_protocol_mismatch=args.allow_protocol_mismatch)
        finish_results(results, predictions, resamples=args.resamples, stats_seed=args.stats_seed,
                       device=_resolve_device(args.device), progress=not args.no_progress)  # fmt: skip
        write_merged(results, args.out)
        write_report(results, args.out, compare=args.compare)
    except (FileNotFoundError, KeyError, ValueError) as e:
        msg = e.args[0] if isinstance(e, KeyError) and e.args else e
        print(f"hares report: error: {msg}", file=sys.stderr)
        return 2
    print(render_markdown(results).split("\n\n## ")[0])
    print(f"\nreport: {args.out}/report.md, report.csv, report.png, paired.csv, paired.png, results.json")
    return 0


def cmd_references(args: argparse.Namespace) -> int:
    from hares.evaluate.references import render_listing

    print(render_listing())
    return 0
