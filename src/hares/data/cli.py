"""`hares download`: the freely downloadable HARES releases, fetched, verified and unpacked (`hares.data.download`)."""

from __future__ import annotations

import argparse


def register(sub: argparse._SubParsersAction) -> None:
    p = sub.add_parser(
        "download",
        help="download, verify and unpack HARES datasets into --data-root (gated ones: print the steps)",
        description="Downloads are resumable (run the same command again after an interruption), verified against "
        "the checksum each publisher gives, and unpacked atomically into the layout `hares tasks` and `hares eval` "
        "read. Layouts, sizes and licences: docs/DATASETS.md.",
    )
    p.add_argument("tasks", nargs="*", metavar="TASK", help="task or release names (see --list), or all")
    p.add_argument("--data-root", default=None, help="folder holding the datasets (required to download)")
    p.add_argument("--list", action="store_true", help="list the releases, their files and checksum sources")
    p.add_argument("--keep-archives", action="store_true", help="keep the archives in DATA_ROOT/.hares-downloads")
    p.add_argument("--no-progress", action="store_true", help="no progress bars")
    p.add_argument("--voxforge-limit", type=int, default=0, help=argparse.SUPPRESS)  # tests and trial runs
    p.set_defaults(func=cmd_download)


def cmd_download(args: argparse.Namespace) -> int:
    from pathlib import Path

    from hares.data import download as d

    if args.list:
        for r in d.RELEASES.values():
            print("\n".join(d.describe(r)))
        return 0
    if not args.tasks or not args.data_root:
        print("hares download: give TASK... and --data-root DIR (or --list)")
        return 2
    root = Path(args.data_root).expanduser()
    names = list(d.RELEASES) if "all" in args.tasks else args.tasks
    try:
        releases = list(dict.fromkeys(d.release_for(n) for n in names))
    except KeyError as e:
        print(f"hares download: {e.args[0]}")
        return 2
    failed = []
    for r in releases:
        try:
            if isinstance(r, d.Gated):
                print("\n".join(d.gated_steps(r, root)))
            elif isinstance(r, d.VoxForgeList):
                d.download_voxforge(r, root, progress=not args.no_progress, limit=args.voxforge_limit)
            else:
                d.download_release(r, root, progress=not args.no_progress, keep_archives=args.keep_archives)
        except d.DownloadError as e:
            print(f"hares download: {e}")
            failed.append(r.name)
    if failed:
        print(f"hares download: failed: {', '.join(failed)} (nothing half-written was left in {root})")
        return 1
    return 0
