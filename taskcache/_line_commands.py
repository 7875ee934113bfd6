"""The subcommands of ``%taskcache``; each parses its own options."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from IPython.core.error import UsageError
from IPython.core.magic_arguments import MagicArgumentParser

from . import api
from .runner import get_runner

if TYPE_CHECKING:
    from .magics import TaskCache


def _parser(prog: str) -> MagicArgumentParser:
    return MagicArgumentParser(prog=f"%taskcache {prog}", add_help=False)


def cmd_runs(magics: TaskCache, argv: list[str]) -> Any:
    p = _parser("runs")
    p.add_argument("--task")
    p.add_argument("--status")
    p.add_argument("--tag")
    p.add_argument("--limit", type=int, default=20)
    a = p.parse_args(argv)
    return api.runs(task=a.task, status=a.status, tag=a.tag, limit=a.limit)


def cmd_show(magics: TaskCache, argv: list[str]) -> None:
    p = _parser("show")
    p.add_argument("id", type=int)
    a = p.parse_args(argv)
    print(api.run(a.id).describe())


def cmd_load(magics: TaskCache, argv: list[str]) -> None:
    p = _parser("load")
    p.add_argument("id", type=int)
    p.add_argument("names", nargs="*")
    a = p.parse_args(argv)
    record = api.run(a.id).record
    try:
        values = api.namespace_values(record, a.names or None)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    magics.shell.user_ns.update(values)
    print(f"taskcache: loaded {', '.join(values)} from run #{record.id}")


def cmd_why(magics: TaskCache, argv: list[str]) -> None:
    from .explain import explain_text

    p = _parser("why")
    p.add_argument("task", nargs="?")
    a = p.parse_args(argv)
    task = a.task or magics.last_task
    if task is None:
        raise UsageError("no %%task cell has run yet in this session; give a task name: %taskcache why NAME")
    print(explain_text(get_runner().catalog, task))


def cmd_gc(magics: TaskCache, argv: list[str]) -> None:
    from .maintenance import gc, size_argument

    p = _parser("gc")
    p.add_argument("--dry-run", action="store_true")
    p.add_argument("--older-than-days", type=float, default=None)
    p.add_argument("--keep-last", type=int, default=None)
    p.add_argument("--max-size", type=size_argument, default=None)  # e.g. 500MB
    p.add_argument("--keep-failed", action="store_true")
    a = p.parse_args(argv)
    report = gc(older_than_days=a.older_than_days, keep_last=a.keep_last, max_bytes=a.max_size,
                drop_failed=not a.keep_failed, dry_run=a.dry_run)
    print(report)


def cmd_verify(magics: TaskCache, argv: list[str]) -> None:
    from .maintenance import verify

    p = _parser("verify")
    p.add_argument("--fix", action="store_true")
    a = p.parse_args(argv)
    print(verify(fix=a.fix))


def cmd_config(magics: TaskCache, argv: list[str]) -> None:
    s = get_runner().settings
    for key in ("cache_dir", "db_url", "allow_pickle", "lease_seconds", "busy_timeout_seconds",
                "frame_format"):
        print(f"{key:22} {getattr(s, key)}")
    print(f"{'quiet':22} {magics.quiet}")


def cmd_browse(magics: TaskCache, argv: list[str]) -> Any:
    p = _parser("browse")
    p.add_argument("--task", default=None)
    p.add_argument("--status", default=None)
    p.add_argument("--tag", default=None)
    p.add_argument("--text", default=None)
    p.add_argument("--page-size", type=int, default=25)
    p.add_argument("--no-live", action="store_true", help="no periodic refresh")
    a = p.parse_args(argv)
    from .browser import RunBrowser

    filters = {k: v for k, v in (("task", a.task), ("status", a.status), ("tag", a.tag),
                                 ("text", a.text)) if v is not None}
    return RunBrowser(shell=magics.shell, page_size=a.page_size, live=not a.no_live, **filters)


COMMANDS = {
    "runs": cmd_runs, "show": cmd_show, "load": cmd_load, "why": cmd_why, "gc": cmd_gc,
    "verify": cmd_verify, "config": cmd_config, "browse": cmd_browse,
}


def dispatch(magics: TaskCache, name: str, argv: list[str]) -> Any:
    return COMMANDS[name](magics, argv)
