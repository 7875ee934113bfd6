"""The public catalog API: ``runs()``, ``run(id)``, ``summary()``, ``configure()``."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from taskcache.config import Settings
from taskcache.describe import error_line, format_bytes, format_duration, format_when
from taskcache.lifecycle.runner import Runner, get_runner
from taskcache.lifecycle.runner import configure as _configure
from taskcache.records import (
    CELL_DISPLAY,
    FILE_OUTPUT,
    OUTPUT_LABELS,
    InputRecord,
    RunRecord,
    StateChange,
)

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["Run", "configure", "delete_runs", "namespace_values", "run", "runs", "summary"]

RUN_COLUMNS = [
    "id", "task", "kind", "status", "created_at", "started_at", "finished_at", "duration",
    "hit_count", "last_hit_at", "tags", "user_version", "fingerprint", "error_type", "parent_run_id",
]
#: the columns of ``runs(compact=True)``, all text for people (besides the id index)
COMPACT_COLUMNS = ["task", "status", "started", "duration", "hits", "error"]


def _fresh_runner() -> Runner:
    """The runner, with this process's pending hit counts written, for reads that show them."""
    runner = get_runner()
    runner.reopen_if_gone()
    runner.hits.flush()
    return runner


def configure(
    cache_dir: Any = None, db_url: str | None = None, allow_pickle: bool | None = None,
    **other: Any,
) -> Settings:
    """Set process-wide settings; ``None`` keeps the current value. Returns the settings."""
    return _configure(cache_dir=cache_dir, db_url=db_url, allow_pickle=allow_pickle, **other)


def runs(
    task: str | None = None, status: str | None = None, tag: str | None = None,
    since: datetime | None = None, limit: int = 100, offset: int = 0, *, compact: bool = False,
) -> pd.DataFrame:
    """Recorded runs, newest first, as a pandas DataFrame (one row a run, indexed by id).

    ``compact``: the columns a person reads first, as text: task, status, started (local
    time), duration ("2.1 s"), hits and the error line of a failed run; otherwise every
    column of RUN_COLUMNS with its raw value."""
    import pandas as pd

    records = _fresh_runner().catalog.query_runs(
        task=task, status=status, tag=tag, since=since, limit=limit, offset=offset
    )
    if compact:
        table = pd.DataFrame(
            [[r.task, r.status, format_when(r.started_at or r.created_at),
              format_duration(r.duration), r.hit_count, error_line(r.error_type, r.error_message)]
             for r in records],
            columns=COMPACT_COLUMNS, index=pd.Index([r.id for r in records], name="id"))
        return table
    rows = [{col: getattr(r, col) for col in RUN_COLUMNS} for r in records]
    frame = pd.DataFrame(rows, columns=RUN_COLUMNS)
    frame["tags"] = frame["tags"].map(lambda t: ",".join(t) if t else "")
    return frame.set_index("id")


def run(run_id: int) -> Run:
    """One recorded run by id (RunNotFoundError if there is none)."""
    runner = _fresh_runner()
    return Run(runner.catalog.get_run(int(run_id)), runner)


def summary() -> dict[str, Any]:
    """Counts by status and task, hits, compute time saved (s) and disk used (bytes)."""
    return _fresh_runner().catalog.summary()


def delete_runs(run_ids: Iterable[int], *, runner: Runner | None = None) -> int:
    """Delete runs from the catalog and their artifact files; returns how many runs."""
    runner = runner or get_runner()
    ids = list(run_ids)
    removed = runner.catalog.delete_runs(ids)
    for artifact in removed:
        runner.store.delete(artifact.relpath)
    return len(ids)


def namespace_values(
    record: RunRecord, names: Iterable[str] | None = None, *, runner: Runner | None = None,
) -> dict[str, Any]:
    """A completed run's outputs keyed by the name they take in a namespace: a cell's
    variables as they were, a function's return value as ``result``; internal outputs
    (printed output, cell result) and copies of files it wrote left out unless named."""
    runner = runner or get_runner()
    if record.status != "completed":
        raise ValueError(f"run #{record.id} is {record.status}; only completed runs have "
                         "outputs to load")
    available = [a.name for a in record.artifacts]
    wanted = list(names) if names else [n for n in available
                                        if not n.startswith(("__", FILE_OUTPUT))]
    unknown = [n for n in wanted if n not in available]
    if unknown:
        raise ValueError(f"run #{record.id} has no output {', '.join(unknown)}; "
                         f"it has {', '.join(available) or 'none'}")
    values = runner.load_outputs(record, wanted)
    return {("result" if n == "return" else n): values[n] for n in wanted}


class Outputs(Mapping[str, Any]):
    """A run's outputs, each loaded (verified, decoded) on first access."""

    def __init__(self, record: RunRecord, runner: Runner) -> None:
        self._record = record
        self._runner = runner
        self._by_name = {a.name: a for a in record.artifacts}
        self._loaded: dict[str, Any] = {}

    def __getitem__(self, name: str) -> Any:
        if name not in self._loaded:
            try:
                artifact = self._by_name[name]
            except KeyError:
                raise KeyError(
                    f"run #{self._record.id} has no output {name!r}; it has: "
                    f"{', '.join(self._by_name) or 'none'}"
                ) from None
            self._loaded[name] = self._runner.load_artifact(artifact)
        return self._loaded[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._by_name)

    def __len__(self) -> int:
        return len(self._by_name)

    def __repr__(self) -> str:
        return f"<outputs of run #{self._record.id}: {', '.join(self._by_name) or 'none'}>"


class Run:
    """A read-only view of one recorded run."""

    def __init__(self, record: RunRecord, runner: Runner) -> None:
        self.record = record
        self._runner = runner
        self.outputs = Outputs(record, runner)

    def __getattr__(self, name: str) -> Any:  # id, task, status, duration, source, env, ...
        return getattr(self.record, name)

    @property
    def inputs(self) -> dict[str, InputRecord]:
        return {i.name: i for i in self.record.inputs}

    @property
    def error(self) -> dict[str, str | None] | None:
        if self.record.error_type is None:
            return None
        return {"type": self.record.error_type, "message": self.record.error_message,
                "traceback": self.record.traceback}

    def upstream(self) -> list[Run]:
        return [Run(r, self._runner) for r in self._runner.catalog.upstream(self.record.id)]

    def downstream(self) -> list[Run]:
        return [Run(r, self._runner) for r in self._runner.catalog.downstream(self.record.id)]

    def history(self) -> Sequence[StateChange]:
        return self._runner.catalog.history(self.record.id)

    def describe(self) -> str:
        """Metadata, inputs (with producing runs), outputs, code and error, as text."""
        r = self.record
        lines = [
            f"run #{r.id}  {r.task}  [{r.kind}]  {r.status}"
            + (f"  ({r.invalid_reason})" if r.invalid_reason else ""),
            f"  created {r.created_at.astimezone():%Y-%m-%d %H:%M:%S}  duration "
            f"{format_duration(r.duration)}"
            + f"  hits {r.hit_count}  host {r.host} pid {r.pid}",
        ]
        if r.error_type:
            lines.append(f"  error: {error_line(r.error_type, r.error_message)}")
        if r.tags:
            lines.append(f"  tags: {', '.join(r.tags)}")
        if r.user_version:
            lines.append(f"  version: {r.user_version}")
        lines.append("  inputs:")
        for i in r.inputs:
            origin = f"  <- run #{i.producer_run_id}" if i.producer_run_id else ""
            lines.append(f"    {i.name}: {i.type_name} {i.value_hash.rsplit(':', 1)[-1][:12]}{origin}")
        lines.append("  outputs:")
        for a in r.artifacts:
            if a.name == CELL_DISPLAY:  # replayed on a hit; not a value anyone loads
                continue
            shape = f" shape {a.shape}" if a.shape else ""
            label = f"({OUTPUT_LABELS[a.name]})" if a.name in OUTPUT_LABELS else a.name
            lines.append(f"    {label}: {a.type_name}{shape} [{a.codec}, {format_bytes(a.size)}]")
        lines.append("  code:")
        lines += [f"    {line}" for line in r.source.splitlines()]
        if r.error_type:
            lines.append("  traceback:")
            lines += [f"    {line}" for line in (r.traceback or "").splitlines()]
        return "\n".join(lines)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Run) and other.record.id == self.record.id

    def __hash__(self) -> int:
        return hash(self.record.id)

    def __repr__(self) -> str:
        r = self.record
        took = f", {r.duration:.3g} s" if r.duration is not None else ""
        return f"<Run #{r.id} {r.task} {r.status}{took}, outputs: {', '.join(self.outputs) or 'none'}>"
