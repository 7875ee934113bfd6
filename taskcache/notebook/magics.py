"""``%%task`` and ``%taskcache``: the IPython face of taskcache.

Settings are traitlets here (``%config TaskCache.cache_dir = "..."``) and become the core's
plain settings at the edge, through ``runner.configure``.
"""

from __future__ import annotations

import html
import shlex
import sys
from typing import Any

from IPython.core.error import UsageError
from IPython.core.magic import Magics, cell_magic, line_magic, magics_class
from IPython.core.magic_arguments import (
    MagicArgumentParser,
    argument,
    magic_arguments,
    parse_argstring,
)
from traitlets import Bool, Float, Int, Unicode, observe

from taskcache.commands import COMMANDS, Context, add_subcommands
from taskcache.errors import (
    CatalogUnavailableError,
    ConfigError,
    FingerprintError,
    RepeatedlyAbandonedError,
    TaskcacheError,
)
from taskcache.lifecycle import runner as runner_module
from taskcache.notebook.cell import CellOptions, CellOutcome, CellTask, run_sync
from taskcache.records import check_label


def _names(value: str | None) -> list[str] | None:
    if value is None:
        return None
    names = [n.strip() for n in value.split(",") if n.strip()]
    bad = [n for n in names if not n.isidentifier()]
    if bad:
        raise UsageError(f"{', '.join(bad)} is not a variable name; give names separated by commas, e.g. -o df,model")
    return names


def _seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.1f} s"


@magics_class
class TaskCache(Magics):
    """Cache notebook cells by their code and the content of their inputs."""

    cache_dir = Unicode(None, allow_none=True, help="Folder of the catalog and artifacts (default ./.taskcache).").tag(config=True)
    db_url = Unicode(None, allow_none=True, help="SQLAlchemy URL of the catalog (default SQLite in cache_dir).").tag(config=True)
    allow_pickle = Bool(None, allow_none=True, help="Store values no other codec fits with pickle (trusted, local catalogs only).").tag(config=True)
    lease_seconds = Float(None, allow_none=True, help="How long a running run's lease lasts.").tag(config=True)
    artifacts_url = Unicode(None, allow_none=True, help="fsspec URL of the artifacts (s3://bucket/prefix, ...); default cache_dir/artifacts.").tag(config=True)
    frame_format = Unicode(None, allow_none=True, help="How DataFrames are stored: 'parquet' (default) or 'arrow' (memory-mapped on load, larger files).").tag(config=True)
    max_file_output = Unicode(None, allow_none=True, help="Bytes of the files a run writes that are stored with it, e.g. '200MB' (default 1 GB).").tag(config=True)
    executor = Unicode(None, allow_none=True, help="Where f.map/f.submit run misses: 'threads' (default), 'processes' or 'dask'.").tag(config=True)
    max_workers = Int(None, allow_none=True, help="Workers of the thread or process pool of f.map/f.submit (default: one per CPU).").tag(config=True)
    max_size = Unicode(None, allow_none=True, help="Bytes of artifacts the cache may hold, e.g. '20GB': after a write that leaves more, the least recently used runs are removed.").tag(config=True)
    quiet = Bool(False, help="Do not print the one-line hit/miss status after a cell.").tag(config=True)

    def __init__(self, shell: Any = None, **kwargs: Any) -> None:
        super().__init__(shell=shell, **kwargs)
        self.last_task: str | None = None
        self.last_outcome: CellOutcome | None = None
        self._apply_settings()

    @observe("cache_dir", "db_url", "allow_pickle", "lease_seconds", "frame_format", "artifacts_url",
             "executor", "max_workers", "max_size", "max_file_output")
    def _on_setting_change(self, change: Any) -> None:
        self._apply_settings()

    def _apply_settings(self) -> None:
        try:
            runner_module.configure(
                cache_dir=self.cache_dir, db_url=self.db_url, allow_pickle=self.allow_pickle,
                lease_seconds=self.lease_seconds, frame_format=self.frame_format,
                artifacts_url=self.artifacts_url, executor=self.executor,
                max_workers=self.max_workers, max_size=self.max_size,
                max_file_output=self.max_file_output,
            )
        except TaskcacheError as exc:
            raise UsageError(str(exc)) from None

    # -- %%task ---------------------------------------------------------------------------
    @magic_arguments()
    @argument("name", nargs="?", default=None, help="Task name (default: cell:<outputs>).")
    @argument("--force", action="store_true", help="Recompute even if a cached run exists.")
    @argument("--no-cache", action="store_true", help="Run and record, but never serve from cache.")
    @argument("-i", "--inputs", default=None, help="Comma-separated inputs, replacing the analysis.")
    @argument("-o", "--outputs", default=None, help="Comma-separated outputs to store, replacing the analysis.")
    @argument("--ignore", default=None, help="Comma-separated inputs left out of the key.")
    @argument("-t", "--tag", action="append", default=[], help="Tag the run (repeatable).")
    @argument("--version", default=None, help="Your own version; change it to invalidate by hand.")
    @argument("-q", "--quiet", action="store_true", help="No status line.")
    @argument("--no-track-files", action="store_true",
              help="Do not record the files the cell reads and writes.")
    @argument("--files", default=None,
              help="Comma-separated files and folders the cell depends on that tracking cannot "
                   "see (read by C code through a computed path), e.g. --files a.csv,data/")
    @cell_magic
    def task(self, line: str, cell: str) -> Any:
        """Run the cell only when its code or the content of its inputs changed; otherwise
        restore its outputs and replay what it printed.

            %%task clean --tag exp1
            df = raw[raw.value > threshold].copy()
        """
        args = parse_argstring(self.task, line)
        if args.name is not None and not args.name.strip():
            raise UsageError("the task name is empty; write %%task NAME or leave the name out")
        try:
            for value, what in ((args.name, "task name"), (args.version, "task version"),
                                *((tag, "tag") for tag in args.tag)):
                if value is not None:
                    check_label(value, what)
        except ValueError as exc:
            raise UsageError(str(exc)) from None
        options = CellOptions(
            name=args.name, force=args.force, no_cache=args.no_cache,
            inputs=_names(args.inputs), outputs=_names(args.outputs),
            ignore=_names(args.ignore) or (), tags=args.tag, version=args.version,
            quiet=args.quiet or self.quiet, track_files=not args.no_track_files,
            files=[p.strip() for p in (args.files or "").split(",") if p.strip()],
        )
        unavailable = None  # the catalog cannot be used: the cell runs without the cache
        try:
            runner = runner_module.get_runner()
        except ConfigError as exc:  # e.g. a cache folder other users can write to
            raise UsageError(str(exc)) from None
        except CatalogUnavailableError as exc:
            runner, unavailable = None, exc
        cell_task = CellTask(self.shell, runner, cell, options, magic_line=f"%%task {line}".rstrip())
        self.last_task = cell_task.name
        steps = self._run_task(cell_task, runner, unavailable)
        if cell_task.is_async:  # top-level await: the cell awaits this (see extension.py)
            return steps
        return run_sync(steps)

    async def _run_task(self, cell_task: CellTask, runner: Any, unavailable: Any) -> Any:
        """Look up, then restore or execute: a coroutine that only suspends where the cell's
        own code awaits."""
        options = cell_task.options
        try:
            spec = cell_task.spec()
        except FingerprintError as exc:  # runs as a plain cell; the status line says why
            try:
                outcome = await cell_task.run_unkeyed(exc)
            except Exception as error:
                return self._show_failure(error, cell_task, options)
            return self._finish(cell_task, outcome, options)
        if runner is not None and not (options.force or options.no_cache):
            try:
                hit = runner.lookup(spec.fingerprint, prepare=cell_task.prepare_hit)
            except CatalogUnavailableError as exc:
                hit, unavailable = None, exc
            outcome = None if hit is None else cell_task.restore(hit.run, hit.outputs)
            if outcome is not None:
                return self._finish(cell_task, outcome, options)
            rerun = hit is not None  # its views cannot be rebuilt over today's values
        else:
            rerun = options.force or options.no_cache
        try:
            if unavailable is not None:
                outcome = await cell_task.run_uncached(unavailable)
            else:
                outcome = await cell_task.execute(spec, force=rerun)
        except RepeatedlyAbandonedError as exc:
            if exc.fingerprint != spec.fingerprint:  # a nested task's: the cell's code failed
                return self._show_failure(exc, cell_task, options)
            raise UsageError(str(exc)) from None  # the message, not taskcache's traceback
        except Exception as exc:
            return self._show_failure(exc, cell_task, options)
        return self._finish(cell_task, outcome, options)

    def _finish(self, cell_task: CellTask, outcome: CellOutcome, options: CellOptions) -> Any:
        self.last_outcome = outcome
        if not options.quiet:
            self._status_line(cell_task.name, outcome)
        elif outcome.status == "not cached" and outcome.reason:  # quiet hides the status,
            # not why a cell cannot be cached
            print(f"taskcache: {cell_task.name} not cached: {outcome.reason}", file=sys.stderr)
        return outcome.result

    def _status_line(self, name: str, outcome: CellOutcome) -> None:
        run_id = f" #{outcome.run.id}" if outcome.run else ""
        if outcome.status == "hit":
            text = f"taskcache: hit {name}{run_id} (saved {_seconds(outcome.seconds)})"
        elif outcome.status == "miss":
            mutated = f"; stored mutated input {', '.join(outcome.mutated)}" if outcome.mutated else ""
            text = f"taskcache: miss {name}{run_id} (ran in {_seconds(outcome.seconds)}{mutated})"
        else:
            why = f": {outcome.reason}" if outcome.reason else ""
            text = f"taskcache: {name} ran in {_seconds(outcome.seconds)}, not cached{why}"
        self._publish_status(text, outcome.status)

    def _publish_status(self, text: str, status: str) -> None:
        # the theme's secondary text colour, indented as JupyterLab indents printed text
        # (1ch of the code font)
        line = (f'<div style="padding-left:1ch;font-family:var(--jp-code-font-family)">'
                f'<pre class="taskcache-status" style="color:var(--jp-content-font-color2,#616161);'
                f'margin:0">{html.escape(text)}</pre></div>')
        self.shell.display_pub.publish(
            data={"text/plain": text, "text/html": line},
            metadata={"taskcache": {"status": status}},
        )

    def _show_failure(self, exc: BaseException, cell_task: CellTask, options: CellOptions) -> None:
        """Show the traceback as a plain cell would (user frames only), then the status line
        (``taskcache: failed NAME #ID, nothing cached``), and fail the cell."""
        if not options.quiet:
            run_id = f" #{cell_task.failed_run_id}" if cell_task.failed_run_id else ""
            status = f"taskcache: failed {cell_task.name}{run_id}, nothing cached"
        else:
            status = None
        tb = exc.__traceback__
        cell_file = None
        while tb is not None:  # drop taskcache's own frames above the cell's code
            filename = tb.tb_frame.f_code.co_filename
            if filename in self.shell.compile._filename_map:
                cell_file = filename
                break
            tb = tb.tb_next
        exec_result = getattr(self.shell.displayhook, "exec_result", None)
        if exec_result is None or cell_file is None:
            if status:
                self._publish_status(status, "failed")
            raise exc  # not inside a cell run (direct call): let the caller see it
        self.shell.showtraceback((type(exc), exc, tb), tb_offset=0)
        if status:
            self._publish_status(status, "failed")
        exec_result.error_in_exec = exc
        return None

    # -- %taskcache -----------------------------------------------------------------------
    @line_magic
    def taskcache(self, line: str) -> Any:
        """Browse and manage the catalog: runs, show ID, load ID [NAMES], why [TASK], gc,
        verify, summary, config, browse.  ``%taskcache runs --task clean --status completed``"""
        parser = MagicArgumentParser(prog="%taskcache", add_help=False)
        add_subcommands(parser, shell=True)
        names = ", ".join(COMMANDS)
        try:
            words = shlex.split(line)
        except ValueError as exc:  # an unbalanced quote
            raise UsageError(f"%taskcache {line}: {exc}") from None
        if not words or words[0] not in COMMANDS:
            raise UsageError(f"%taskcache needs one of: {names} (e.g. %taskcache runs --limit 10)")
        args = parser.parse_args(words)  # a bad argument raises UsageError
        context = Context(shell=self.shell, last_task=self.last_task, quiet=self.quiet)
        try:
            result = args.command.run(args, context)
        except (TaskcacheError, ValueError) as exc:  # incl. a catalog that cannot be opened
            raise UsageError(str(exc)) from None
        if hasattr(result, "_repr_html_") or hasattr(result, "_repr_mimebundle_"):
            return result  # a table or the run browser: displayed as the cell's result
        if result is not None:
            print(result)
        return None
