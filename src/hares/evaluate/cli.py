"""`hares eval` (encoders x tasks -> report) and `hares tasks` (what each task reads and whether it is there)."""

from __future__ import annotations

import argparse
import sys

from hares.evaluate.report_cli import add_stats_options


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
    p.add_argument("--out", default=None, help="output folder for the report (required unless --plan)")
    p.add_argument("--cache-dir", default=None, help="embedding cache (default $HARES_CACHE or ~/.cache/hares)")
    p.add_argument("--device", default="auto", help="cpu, cuda, cuda:1 ... (default: cuda if available)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per encoder batch (default 32)")
    p.add_argument("--workers", type=int, default=2, help="audio decoding workers (default 2)")
    p.add_argument(
        "--precision",
        choices=("fp32", "bf16", "fp16"),
        default="fp32",
        help="network precision: fp32, or bf16/fp16 autocast (changes embeddings; part of the cache key)",
    )
    p.add_argument(
        "--plan",
        action="store_true",
        help="print per task the clips, audio hours and estimated extraction and probe time; run nothing",
    )
    p.add_argument("--seeds", default=None, help="probe seeds, e.g. 0,1,2 (default: the protocol's 3 seeds)")
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override a protocol value (checked: type, range, non-empty tuples), e.g. --set max_epochs=50 "
        "--set lrs=(1e-3,); batch_size here is the probe's minibatch; `--set help` lists every setting",
    )
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    add_stats_options(p)
    p.set_defaults(func=cmd_eval)  # fmt: skip

    p = sub.add_parser(
        "tasks",
        help="list the HARES tasks, the folders each looks for, and for the datasets found their clips per split "
        "against the release's published counts",
    )
    p.add_argument("--data-root", default=".", help="folder holding the datasets (default: current folder)")
    p.add_argument("--no-counts", action="store_true", help="only say where each dataset is; do not read its files")
    p.set_defaults(func=cmd_tasks)


def parse_overrides(items: list[str]) -> dict:
    """`KEY=VALUE` strings -> {key: literal value} (a bare word stays a string); checked by `Protocol`."""
    from hares.schema import parse_assignments

    return parse_assignments(items)


def _check_checkpoints(encoders: list[str]) -> None:
    """Validate every `[NAME:]PATH.safetensors` encoder's file (metadata, shapes, finite weights) up front."""
    from pathlib import Path

    from hares.evaluate.encoders import EXTERNAL_KINDS, parse_encoder_arg, split_options
    from hares.models import check_checkpoint

    for arg in encoders:
        base, _ = split_options(parse_encoder_arg(arg)[1])
        if base.split(":", 1)[0] in EXTERNAL_KINDS:  # hear:/hf:/py: check their own files when they load
            continue
        name, path = base.split(":", 1) if ":" in base and not Path(base).exists() else (None, base)
        if path.endswith(".safetensors"):
            check_checkpoint(path, name or None)


def prepare_eval(args: argparse.Namespace):
    """Everything `hares eval` can check before any compute: returns the Protocol; raises one-line errors."""
    from hares.evaluate.run import Protocol
    from hares.io import check_output_dir
    from hares.schema import OptionError, check_device

    overrides = parse_overrides(args.set)
    if args.seeds is not None:
        try:
            overrides["seeds"] = tuple(int(s) for s in args.seeds.split(","))
        except ValueError:
            raise OptionError(f"--seeds {args.seeds!r}: expected comma-separated integers, e.g. 0,1,2") from None
    if args.batch_size < 1:
        raise OptionError(f"--batch-size {args.batch_size}: must be >= 1")
    if args.workers < 0:
        raise OptionError(f"--workers {args.workers}: must be >= 0")
    protocol = Protocol.with_overrides(**overrides)
    check_device(args.device)  # hares.schema
    if args.out is None and not getattr(args, "plan", False):
        raise OptionError("--out is required (or --plan to only estimate the run)")
    if args.out is not None:
        check_output_dir(args.out, "--out")
    if args.cache_dir is not None:
        check_output_dir(args.cache_dir, "--cache-dir")
    _check_checkpoints(args.encoder)
    return protocol


def cmd_eval(args: argparse.Namespace) -> int:
    from hares.cli import error_line
    from hares.evaluate.run import BadAudioError, run_eval

    if args.set == ["help"]:
        from hares.evaluate.run import Protocol
        from hares.schema import help_text

        specs, fixed = Protocol.settings()
        print(f"hares eval --set KEY=VALUE accepts:\n{help_text(specs)}\nrecorded but fixed: {', '.join(fixed)}")
        return 0
    try:
        protocol = prepare_eval(args)
        if args.plan:
            from hares.evaluate.plan import plan_eval, render_plan

            plan = plan_eval(args.encoder, args.tasks, data_root=args.data_root, cache_dir=args.cache_dir,
                             device=args.device, batch_size=args.batch_size, num_workers=args.workers,
                             precision=args.precision, progress=not args.no_progress, protocol=protocol)  # fmt: skip
            print(render_plan(plan))
            return 0
        results = run_eval(args.encoder, args.tasks, data_root=args.data_root, out=args.out, cache_dir=args.cache_dir,
                           device=args.device, batch_size=args.batch_size, num_workers=args.workers,
                           progress=not args.no_progress, resamples=args.resamples, stats_seed=args.stats_seed,
                           compare=args.compare, precision=args.precision, protocol=protocol)  # fmt: skip
    except (BadAudioError, OSError, KeyError, TypeError, ValueError) as e:
        print(f"hares eval: error: {error_line(e)}", file=sys.stderr)
        return 2
    if results is None:  # a torchrun rank other than 0: it extracted its shards; rank 0 reports
        return 0
    from hares.evaluate.report import render_markdown

    print(render_markdown(results).split("\n\n## ")[0])
    print_skipped(results)
    paired = ", paired.csv, paired.png" if results["stats"]["paired"] else ""
    print(f"\nreport: {args.out}/report.md, report.csv, report.png{paired}, results.json, predictions/")
    return 0


def print_skipped(results: dict, show: int = 3) -> None:
    """One line per task whose unreadable files were skipped (the first few named; all are in results.json)."""
    by_task: dict[str, set[str]] = {}
    for r in results["results"]:
        by_task.setdefault(r["task"], set()).update(r.get("bad_files", []))
    for task, bad in by_task.items():
        if bad:
            names = sorted(bad)
            more = f" and {len(names) - show} more" if len(names) > show else ""
            print(f"\n{task}: skipped {len(names)} unreadable file(s) (listed in results.json): "
                  f"{'; '.join(names[:show])}{more}")  # fmt: skip


def cmd_tasks(args: argparse.Namespace) -> int:
    from hares.tasks import get_task, list_tasks

    header = f"{'task':24s} {'domain':12s} {'metric':9s} {'classes':>7s}  {'data':8s}"
    print(f"{header} folders looked for (under {args.data_root})")
    flagged = 0
    for name in list_tasks():
        spec = get_task(name)
        found = spec.locate(args.data_root)
        where = f"found    {found}" if found else "missing  " + ", ".join(spec.folders)
        print(f"{name:24s} {spec.domain:12s} {spec.metric:9s} {spec.num_classes:7d}  {where}", flush=True)
        if found and not args.no_counts:
            lines, bad = task_counts(spec, args.data_root)
            flagged += bad
            for line in lines:
                print(f"{'':24s} {line}")
    print("\ncustom tasks: --tasks csv:PATH (columns path,label|labels[,split,group]); layouts and downloads: "
          "docs/DATASETS.md, `hares download TASK`")  # fmt: skip
    if flagged:
        print(f"{flagged} task(s) differ from the release's published counts (marked !)")
    return 0


def task_counts(spec, data_root) -> tuple[list[str], int]:
    """Lines for `hares tasks`: clips per split, each published count that differs (`!`), the straddling groups
    the release defines, and what the adapter skipped; returns (lines, 1 if anything differs else 0)."""
    try:
        clips = spec.build_manifest(data_root)
    except (FileNotFoundError, ValueError) as e:
        return [f"! cannot read: {e}"], 1
    counts = ", ".join(f"{s} {n:,}" for s, n in clips.report.get("clips", {}).items())
    lines, bad = [f"clips: {counts}"], 0
    for what, got, expected in spec.count_check(clips):
        if got != expected:
            lines.append(f"! {what}: {got:,} clips, the release publishes {expected:,}")
            bad = 1
    if spec.published and not bad:
        lines.append("= the release's published counts")
    straddling = clips.report.get("straddling", {})
    if straddling:
        shown = "; ".join(f"{g} in {'/'.join(s)}" for g, s in list(straddling.items())[:4])
        more = f" (+{len(straddling) - 4} more)" if len(straddling) > 4 else ""
        lines.append(f"note: {len(straddling)} group(s) in two splits as the release defines them: {shown}{more}")
    for key in ("missing", "dropped", "skipped_languages"):
        value = clips.report.get(key)
        if value and any(value.values() if isinstance(value, dict) else [value]):
            lines.append(f"note: {key}: {value if isinstance(value, dict) else len(value)}")
    return lines, bad
