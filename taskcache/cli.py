"""``taskcache``: the catalog outside notebooks, over the same subcommands as ``%taskcache``
(runs, show, why, gc, verify, summary, config, flow)."""

from __future__ import annotations

import argparse
import sys

from taskcache.commands import Context, add_subcommands


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="taskcache", description=__doc__)
    parser.add_argument("--cache-dir", help="catalog folder (default: TASKCACHE_DIR or ./.taskcache)")
    add_subcommands(parser, shell=False)
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run one subcommand; the exit status is 0, 1 when ``verify`` found damage, 2 on a bad
    argument (with the usage line) or a catalog that cannot be used."""
    parser = build_parser()
    args = parser.parse_args(argv)  # a bad argument exits with status 2
    from taskcache.errors import ConfigError, TaskcacheError
    from taskcache.lifecycle.runner import configure

    try:
        configure(cache_dir=args.cache_dir)
        result = args.command.run(args, Context())
    except ConfigError as exc:  # e.g. --cache-dir: the usage line, then the error
        parser.error(str(exc))
    except (TaskcacheError, ValueError) as exc:
        print(f"taskcache: {exc}", file=sys.stderr)
        return 2
    if result is not None:
        if hasattr(result, "to_string"):  # a DataFrame: every column on one line
            import pandas as pd

            with pd.option_context("display.width", 200, "display.max_columns", 20):
                print(result)
        else:
            print(result)
    if args.name == "verify" and not (result.ok or args.fix):
        return 1
    if args.name == "doctor" and not result.ok:
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
