"""Plain, immutable records the catalog hands out (never live ORM objects)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

STATUSES = ("pending", "running", "completed", "failed", "cancelled")

#: output names taskcache gives itself: a function's return value, a cell's final expression,
#: what a cell printed and displayed, the names it deleted, which values were changed in
#: place or are views of others, the library settings and global random generators it
#: changed (all replayed on a hit)
RETURN = "return"
CELL_RESULT = "__result__"
CELL_DISPLAY = "__display__"
CELL_DELETED = "__deleted__"
ALIASING = "__aliasing__"
SETTINGS = "__settings__"
RANDOM_STATE = "__random_state__"
#: a function's argument that the function changed in place: ARGUMENT + parameter name
ARGUMENT = "argument:"
#: a file a run wrote is stored as an artifact named FILE_OUTPUT + its absolute path, with
#: the codec FILE_CODEC (the bytes as they were); it is put back on disk, never into a namespace
FILE_OUTPUT = "file:"
FILE_CODEC = "file"
#: how those of a cell are shown to people
OUTPUT_LABELS = {CELL_DISPLAY: "printed and displayed output", CELL_RESULT: "cell result",
                 CELL_DELETED: "deleted names", ALIASING: "views and objects changed in place",
                 SETTINGS: "library settings changed", RANDOM_STATE: "random generators"}
CELL_OUTPUTS = frozenset(OUTPUT_LABELS)  # a cell's outputs that are not variables
OUTPUT_LABELS = {CELL_DISPLAY: "printed and displayed output", CELL_RESULT: "cell result"}
def check_label(text: str, what: str) -> str:
    """``text`` (a task name, tag or version), or ValueError naming ``what`` when the
    catalog cannot store it as text: a lone surrogate (not valid UTF-8)."""
    if not isinstance(text, str):
        raise ValueError(f"the {what} must be a str, not {type(text).__qualname__}")
    try:
        text.encode("utf-8")
    except UnicodeEncodeError as exc:
        raise ValueError(
            f"the {what} {text!r} contains a lone surrogate ({text[exc.start]!r} at position "
            f"{exc.start}), which cannot be stored as text; use valid Unicode text") from None
    return text


TRANSITIONS: dict[str, frozenset[str]] = {
    "pending": frozenset({"running", "cancelled", "failed"}),
    "running": frozenset({"completed", "failed", "cancelled"}),
    "completed": frozenset(),
    "failed": frozenset(),
    "cancelled": frozenset(),
}


@dataclass(frozen=True)
class InputRecord:
    name: str
    value_hash: str
    type_name: str
    repr: str = ""
    producer_artifact_id: int | None = None  # lineage: the artifact with the same value hash
    producer_run_id: int | None = None


@dataclass(frozen=True)
class ArtifactRecord:
    name: str          # output name ("return" for functions, variable names for cells)
    codec: str
    relpath: str
    size: int
    checksum: str
    value_hash: str
    type_name: str
    shape: tuple[int, ...] | None = None
    rows: int | None = None
    columns: tuple[str, ...] | None = None
    repr: str = ""
    id: int | None = None
    run_id: int | None = None
    #: the hash of the value as decoding the file gives it back, when that differs from
    #: value_hash (a type whose pickle drops state); None when they are equal
    restored_hash: str | None = None


@dataclass(frozen=True)
class FileRecord:
    """A file or folder a run read or wrote, as it was when the run recorded it.

    ``kind`` is "file", "folder" or "missing" (a declared file that did not exist).
    ``content_hash`` is ``"file:xxh3_128:<hex>"`` of a file's bytes or ``"folder:..."`` of a
    folder's sorted listing; None when the run saw it change under it (never matches).
    ``racy``: it changed so shortly before it was recorded that an unchanged stat does not
    prove unchanged content (git's "racily clean"), so a check re-reads it."""

    path: str                    # absolute
    role: str                    # "read" | "written"
    kind: str
    size: int | None = None
    mtime_ns: int | None = None
    ctime_ns: int | None = None
    inode: int | None = None
    mode: int | None = None      # permission bits, for putting a written file back
    content_hash: str | None = None
    racy: bool = False

    @property
    def identity(self) -> tuple[int | None, ...]:
        """What a stat must show for the file to count as untouched."""
        return (self.size, self.mtime_ns, self.ctime_ns, self.inode)


@dataclass(frozen=True)
class StateChange:
    run_id: int
    from_status: str | None
    to_status: str
    at: datetime
    reason: str | None = None


@dataclass(frozen=True)
class RunSpec:
    """What a new run is, before it runs (the input of Catalog.claim)."""

    task: str
    kind: str                 # "cell" | "function"
    fingerprint: str
    code_hash: str
    source: str = ""
    tags: tuple[str, ...] = ()
    user_version: str | None = None
    inputs: tuple[InputRecord, ...] = ()
    env: dict[str, Any] = field(default_factory=dict)  # python, packages, host, pid, git, path
    parent_run_id: int | None = None


@dataclass(frozen=True)
class RunRecord:
    id: int
    task: str
    kind: str
    fingerprint: str
    code_hash: str
    status: str
    created_at: datetime
    started_at: datetime | None
    finished_at: datetime | None
    duration: float | None
    source: str
    tags: tuple[str, ...]
    user_version: str | None
    error_type: str | None
    error_message: str | None
    traceback: str | None
    host: str | None
    pid: int | None
    env: dict[str, Any]
    lease_owner: str | None
    lease_expires_at: datetime | None
    hit_count: int
    last_hit_at: datetime | None
    parent_run_id: int | None
    invalid_reason: str | None = None  # set when a completed run's artifacts failed to verify
    inputs: tuple[InputRecord, ...] = ()
    artifacts: tuple[ArtifactRecord, ...] = ()
    files: tuple[FileRecord, ...] = ()  # files read and written (a hit checks the reads)


@dataclass(frozen=True)
class Claim:
    """A running run owned by this process until its lease expires."""

    run_id: int
    lease_token: str
    lease_expires_at: datetime
