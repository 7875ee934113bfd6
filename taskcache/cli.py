"""``taskcache``: the catalog outside notebooks (runs, show, why, gc, verify, summary)."""

from __future__ import annotations

import argparse
import sys


def _size(text: str) -> int:
    from .maintenance import size_argument

    return size_argument(text)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskcache", description=__doc__)
    parser.add_argument("--cache-dir", help="catalog folder (default: TASKCACHE_DIR or ./.taskcache)")
    sub = parser.add_subparsers(dest="command", required=True)
    runs = sub.add_parser("runs", help="list runs, newest first")
    runs.add_argument("--task")
    runs.add_argument("--status")
    runs.add_argument("--tag")
    runs.add_argument("--limit", type=int, default=20)
    show = sub.add_parser("show", help="one run in full")
    show.add_argument("id", type=int)
    why = sub.add_parser("why", help="why the last run of a task missed")
    why.add_argument("task")
    gc = sub.add_parser("gc", help="free space")
    gc.add_argument("--dry-run", action="store_true")
    gc.add_argument("--older-than-days", type=float)
    gc.add_argument("--keep-last", type=int)
    gc.add_argument("--max-size", metavar="SIZE", type=_size, help="then drop the least recently used "
                    "runs until their artifacts fit, e.g. 500MB, 2GB, 1.5GiB")
    gc.add_argument("--keep-failed", action="store_true")
    verify = sub.add_parser("verify", help="check every artifact and the database")
    verify.add_argument("--fix", action="store_true")
    sub.add_parser("summary", help="counts, hits, time saved, disk used")
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    from . import api
    from .errors import TaskcacheError
    from .runner import configure, get_runner

    try:
        configure(cache_dir=args.cache_dir)
        if args.command == "runs":
            import pandas as pd

            frame = api.runs(task=args.task, status=args.status, tag=args.tag, limit=args.limit)
            with pd.option_context("display.width", 200, "display.max_columns", 20):
                print(frame[["task", "status", "created_at", "duration", "hit_count", "tags"]])
        elif args.command == "show":
            print(api.run(args.id).describe())
        elif args.command == "why":
            from .explain import explain_text

            print(explain_text(get_runner().catalog, args.task))
        elif args.command == "gc":
            from .maintenance import gc

            print(gc(older_than_days=args.older_than_days, keep_last=args.keep_last,
                     max_bytes=args.max_size, drop_failed=not args.keep_failed,
                     dry_run=args.dry_run))
        elif args.command == "verify":
            from .maintenance import verify

            report = verify(fix=args.fix)
            print(report)
            return 0 if report.ok or args.fix else 1
        elif args.command == "summary":
            for key, value in api.summary().items():
                print(f"{key:12} {value}")
    except TaskcacheError as exc:
        print(f"taskcache: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
