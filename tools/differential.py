"""Differential test harness: does wrapping every cell in ``%%task`` change what a notebook does?

For each notebook this runs, each in a fresh kernel:

- ``plain``: the notebook as written (cwd = a fresh copy of the notebook's folder);
- ``cold``, ``warm1``, ``warm2``: the notebook with ``%load_ext taskcache`` first and each code
  cell prefixed by ``%%task cell_<i>``, three times on one catalog (``TASKCACHE_DIR`` in a temp
  folder) and one copy of the folder (files written by the cold run stay, as for a user who
  re-runs a notebook);

and compares, against the plain run, every cell's visible output (streams, results, displays,
errors; taskcache's own status lines removed, addresses and timings normalised), the final
namespace (a content hash of every user variable) and the files in the working folder.
Optionally (``--repeat-plain``, the default) the plain run is done twice, so that cells,
variables and files that differ between two plain runs (unseeded randomness, clocks) are set
aside as nondeterministic instead of being blamed on taskcache.

    python tools/differential.py FOLDER_OR_NOTEBOOKS... [--workdir DIR] [--json out.json]

Importable: ``run_notebook`` / ``run_paths`` return ``NotebookReport`` objects, ``targets``
checks issue 12's targets, ``format_report`` renders the table and the per-cell differences.
Cell numbers are indexes into ``nb.cells`` (markdown included), as the ``cell_<i>`` task names.
"""

from __future__ import annotations

import argparse
import ast
import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import nbformat
import xxhash
from nbclient import NotebookClient

WRAPPED_RUNS = ("cold", "warm1", "warm2")
IGNORED_DIRS = {".ipynb_checkpoints", "__pycache__", ".taskcache", ".git"}
NS_MARKER = "<<taskcache-differential-namespace>>"

# The last cell of every run: a hash of every user variable, printed as JSON between markers.
# It binds no name in the user namespace (everything lives in a function deleted afterwards).
NAMESPACE_CELL = f'''\
def __differential_namespace():
    import json, types
    try:
        from taskcache.hashing import hash_value
    except ImportError:
        from taskcache.fingerprint import hash_value
    ip = get_ipython()
    skip = set(ip.user_ns_hidden) | {{"In", "Out", "exit", "quit", "get_ipython"}}
    found = {{}}
    for name, value in list(ip.user_ns.items()):
        if name.startswith("_") or name in skip:
            continue
        kind = type(value).__module__ + "." + type(value).__qualname__
        if isinstance(value, types.ModuleType):
            found[name] = [kind, "module " + value.__name__]
            continue
        try:
            found[name] = [kind, hash_value(value, name)]
        except BaseException:
            found[name] = [kind, "unhashable"]
    print("{NS_MARKER}" + json.dumps(found) + "{NS_MARKER}")
__differential_namespace()
del __differential_namespace
'''

# What legitimately changes between two executions (taken from notebooks/sanitize.cfg, plus
# %timeit's loop counts). Paths of the working copy and the catalog are replaced first.
_NORMALISE = [
    (re.compile(r"0x[0-9a-fA-F]+"), "0x<ADDR>"),
    (re.compile(r"CPU times: [^\n<]*"), "CPU times: <TIMES>"),
    (re.compile(r"Wall time: [^\n<]*"), "Wall time: <TIME>"),
    (re.compile(r"\b\d+(\.\d+)?(e-?\d+)? ?(ms|s|µs|μs|us|ns|min)\b"), "<DURATION>"),
    (re.compile(r"\(mean ± std\. dev\. of \d+ runs?, [\d,]+ loops? each\)"), "(<TIMEIT STATS>)"),
    (re.compile(r"The slowest run took [^\n]* being cached\.\n?"), ""),
    (re.compile(r"(/tmp|/var/folders|/private/var/folders)/[^\s'\"<>]+"), "<TMP>"),
]
# taskcache's one-line status: "taskcache: hit cell_3 #12 (saved 1.2 s)", "... miss ...",
# "taskcache: cell_3 ran in 2 ms, not cached: cannot hash 'f' of type ..." (the reason is
# optional), and the line it prints on stderr when a hit could not rebuild the aliasing:
# "taskcache: cell_3 ran but was not cached: df shares memory with a; ..."
_STATUS_LINE = re.compile(r"taskcache: (?:(hit|miss) .*|\S+ ran (?:in .*?, |but was )"
                          r"(not cached)(?:: (.*))?)", re.DOTALL)


def _status_word(line: str) -> tuple[str, str | None] | None:
    """(status, why not cached) when ``line`` is one of taskcache's status lines, else None."""
    m = _STATUS_LINE.fullmatch(line.strip())
    return (m.group(1) or m.group(2), m.group(3)) if m else None


# -- data -------------------------------------------------------------------------------------

@dataclass
class CellResult:
    """One cell in one run: whether it ran, failed, and what taskcache said about it."""
    ok: bool = True                  # ran without an error output
    ran: bool = True                 # False: the run stopped (timeout, dead kernel) before it
    status: str | None = None        # wrapped runs: "hit" | "miss" | "not cached" | None
    reason: str | None = None        # why taskcache did not cache it, as its status line says
    outputs: list[Any] = field(default_factory=list)  # normalised, comparable outputs
    error: str | None = None         # "NameError: name 'x' is not defined"


@dataclass
class RunResult:
    name: str
    seconds: float = 0.0
    aborted: str | None = None       # why the run stopped early (timeout, kernel died, ...)
    cells: dict[int, CellResult] = field(default_factory=dict)
    namespace: dict[str, list[str]] = field(default_factory=dict)   # name -> [type, hash]
    files: dict[str, str] = field(default_factory=dict)             # relpath -> xxh3 of content


@dataclass
class CellDiff:
    cell: int
    run: str                         # "cold" | "warm1" | "warm2"
    status: str | None               # taskcache's status for the cell in that run
    source: str                      # the first lines of the cell
    what: list[str]                  # readable differences, plain vs wrapped excerpts


@dataclass
class NotebookReport:
    notebook: str
    seconds: dict[str, float] = field(default_factory=dict)
    aborted: dict[str, str] = field(default_factory=dict)
    cells_total: int = 0                                   # non-empty code cells
    not_wrapped: list[int] = field(default_factory=list)  # cell magics, magics/shell only
    fail_plain: list[int] = field(default_factory=list)   # not counted
    nondeterministic: list[int] = field(default_factory=list)  # differ between two plain runs
    nondeterministic_why: dict[int, list[str]] = field(default_factory=dict)
    counted: list[int] = field(default_factory=list)      # work plain, deterministic
    fail_wrapped: dict[str, list[int]] = field(default_factory=dict)   # run -> cells
    identical: dict[str, int] = field(default_factory=dict)            # run -> count
    wrapped_cells: list[int] = field(default_factory=list)  # wrapped and work plain
    # cells the cold run said it did not cache (a value it cannot hash or store, or aliasing a
    # hit cannot rebuild: such a cell runs every time, as it should) -> taskcache's reason
    not_cached: dict[int, str] = field(default_factory=dict)
    # the denominator of the hit rates: wrapped cells that work plain, except not_cached (a cell
    # failing or without a status line on cold stays here, as a non-hit)
    cached_cells: list[int] = field(default_factory=list)
    statuses: dict[str, dict[int, str | None]] = field(default_factory=dict)
    hits: dict[str, int] = field(default_factory=dict)
    cell_diffs: list[CellDiff] = field(default_factory=list)
    namespace_diffs: dict[str, list[str]] = field(default_factory=dict)  # run -> lines
    file_diffs: dict[str, list[str]] = field(default_factory=dict)       # run -> lines
    nondeterministic_names: list[str] = field(default_factory=list)
    nondeterministic_files: list[str] = field(default_factory=list)

    def identical_all(self) -> int:
        """Counted cells identical to plain in every wrapped run."""
        differing = {d.cell for d in self.cell_diffs}
        failing = {c for cells in self.fail_wrapped.values() for c in cells}
        return sum(1 for c in self.counted if c not in differing and c not in failing)


@dataclass
class Target:
    name: str
    value: float
    goal: str
    passed: bool
    detail: str = ""


# -- preparing the notebooks --------------------------------------------------------------------

def _code_lines(source: str) -> list[str]:
    return [ln.strip() for ln in source.splitlines() if ln.strip() and not ln.strip().startswith("#")]


def wrappable(source: str) -> bool:
    """Cells wrapped in %%task: not a cell magic, not only line magics / shell commands."""
    lines = _code_lines(source)
    if not lines or source.lstrip().startswith("%%"):
        return False
    return not all(ln.startswith(("%", "!")) for ln in lines)


def code_cells(nb: nbformat.NotebookNode) -> list[int]:
    """Indexes (into nb.cells) of the non-empty code cells."""
    return [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and c.source.strip()]


def _cell(source: str) -> nbformat.NotebookNode:
    return nbformat.v4.new_code_cell(source)


_TIMEIT = re.compile(r"^(\s*%%?timeit)\b", re.MULTILINE)


def quick_timeit(source: str) -> str:
    """%timeit / %%timeit measured once (-n1 -r1): the same edit in every run, so the comparison
    is unchanged, and a notebook that times 1M-element loops runs in seconds, not minutes."""
    return _TIMEIT.sub(r"\1 -n1 -r1", source)


def build_plain(nb: nbformat.NotebookNode, cells: list[int], quick: bool = False
                ) -> nbformat.NotebookNode:
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    edit = quick_timeit if quick else str
    out.cells = [_cell(edit(nb.cells[i].source)) for i in cells] + [_cell(NAMESPACE_CELL)]
    return out


def build_wrapped(nb: nbformat.NotebookNode, cells: list[int], quick: bool = False
                  ) -> nbformat.NotebookNode:
    out = nbformat.v4.new_notebook(metadata=nb.metadata)
    body = []
    for i in cells:
        src = quick_timeit(nb.cells[i].source) if quick else nb.cells[i].source
        body.append(_cell(f"%%task cell_{i}\n{src}" if wrappable(src) else src))
    out.cells = [_cell("%load_ext taskcache")] + body + [_cell(NAMESPACE_CELL)]
    return out


# -- comparing outputs ------------------------------------------------------------------------

def normalise(text: str, replacements: Sequence[tuple[str, str]] = ()) -> str:
    for old, new in replacements:
        text = text.replace(old, new)
    for regex, new in _NORMALISE:
        text = regex.sub(new, text)
    return text


def _text(value: Any) -> str:
    return "".join(value) if isinstance(value, list) else str(value)


def _status_of(output: dict[str, Any]) -> tuple[str, str | None] | None:
    """(status, why not cached) if this output is taskcache's status line, else None."""
    if output.get("output_type") != "display_data":
        return None
    status = (output.get("metadata") or {}).get("taskcache", {}).get("status")
    parsed = _status_word(_text(output.get("data", {}).get("text/plain", "")))
    if status:
        return status, parsed[1] if parsed else None
    return parsed


@dataclass
class Comparable:
    """One cell's output as the comparison sees it, and what taskcache said about the cell."""
    outputs: list[Any]               # normalised, without taskcache's own lines
    status: str | None = None        # "hit" | "miss" | "not cached" | "failed" | None
    reason: str | None = None        # why it was not cached, as taskcache printed it
    error: str | None = None         # "NameError: name 'x' is not defined"


def comparable(outputs: list[dict[str, Any]], replacements: Sequence[tuple[str, str]] = ()
               ) -> Comparable:
    """The normalised outputs of one cell, taskcache's status for it and its error.

    Streams are joined per name; results and displays keep their kind, their MIME types and
    their text/plain (images count by presence); errors keep name and value, not the traceback
    (the wrapped one has the magic's frames)."""
    streams: dict[str, str] = {}
    shown: list[Any] = []
    status = reason = error = None

    def said(parsed: tuple[str, str | None]) -> None:
        nonlocal status, reason
        status = parsed[0]
        if parsed[1]:
            reason = normalise(parsed[1], replacements)

    for out in outputs:
        kind = out.get("output_type")
        if (parsed := _status_of(out)) is not None:
            said(parsed)
            continue
        if kind == "stream":
            kept = []
            for line in _text(out.get("text", "")).splitlines(keepends=True):
                if (parsed := _status_word(line)) is not None:
                    said(parsed)
                else:
                    kept.append(line)
            text = "".join(kept)
            streams[out["name"]] = streams.get(out["name"], "") + text
        elif kind in ("display_data", "execute_result"):
            data = out.get("data", {})
            mimes = sorted(m for m in data if m != "text/plain")
            plain = normalise(_text(data.get("text/plain", "")), replacements)
            shown.append([kind, mimes, plain])
        elif kind == "error":
            error = f"{out.get('ename')}: {normalise(_text(out.get('evalue', '')), replacements)}"
            shown.append(["error", error])
    joined = [[name, normalise(text, replacements)] for name, text in sorted(streams.items())
              if text.strip()]
    return Comparable(joined + shown, status, reason, error)


def _excerpt(value: Any, limit: int = 160) -> str:
    text = value if isinstance(value, str) else json.dumps(value, ensure_ascii=False)
    text = text.replace("\n", "⏎")
    return text if len(text) <= limit else text[:limit] + "…"


def _first_difference(a: str, b: str, width: int = 70) -> tuple[str, str]:
    """Excerpts of two texts around their first differing character."""
    n = next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y), min(len(a), len(b)))
    start = max(0, n - 20)

    def cut(s: str) -> str:
        return (("…" if start else "") + s[start:start + width].replace("\n", "⏎")
                + ("…" if len(s) > start + width else ""))
    return cut(a), cut(b)


def describe(plain: list[Any], wrapped: list[Any]) -> list[str]:
    """Readable differences between a cell's plain and wrapped outputs."""
    def key(item: list[Any]) -> str:
        return item[0]  # stdout, stderr, error, display_data, execute_result

    lines: list[str] = []
    left = {}
    for item in plain:
        left.setdefault(key(item), []).append(item)
    right = {}
    for item in wrapped:
        right.setdefault(key(item), []).append(item)
    for k in sorted(set(left) | set(right)):
        a, b = left.get(k, []), right.get(k, [])
        if a == b:
            continue
        if not b:
            lines.append(f"{k} missing in wrapped; plain: {_excerpt(a[0][-1])}")
        elif not a:
            lines.append(f"{k} only in wrapped: {_excerpt(b[0][-1])}")
        elif len(a) != len(b):
            lines.append(f"{len(a)} {k} outputs plain vs {len(b)} in wrapped; "
                         f"plain: {_excerpt([x[-1] for x in a])} | wrapped: {_excerpt([x[-1] for x in b])}")
        else:
            for x, y in zip(a, b, strict=True):
                if x == y:
                    continue
                if x[0] in ("display_data", "execute_result") and x[1] != y[1]:
                    lines.append(f"{k} MIME types plain {x[1]} vs wrapped {y[1]}")
                if x[-1] != y[-1]:
                    pa, pb = _first_difference(str(x[-1]), str(y[-1]))
                    lines.append(f"{k} differs; plain: {pa!r} | wrapped: {pb!r}")
    if [key(i) for i in plain] != [key(i) for i in wrapped] and not lines:
        lines.append(f"output order differs: plain {[key(i) for i in plain]} vs wrapped "
                     f"{[key(i) for i in wrapped]}")
    return lines


def hint(source: str, plain: list[Any], wrapped: list[Any]) -> str | None:
    """A guess at the failure category, for the summary (never used for counting)."""
    kinds_p = [i[0] for i in plain]
    kinds_w = [i[0] for i in wrapped]
    last = _code_lines(source)[-1] if _code_lines(source) else ""
    if last.endswith(";") and kinds_w.count("execute_result") > kinds_p.count("execute_result"):
        return "trailing ';' not honoured"
    if kinds_p.count("execute_result") != kinds_w.count("execute_result"):
        return "execute_result count differs"
    if [i for i in plain if i[0] == "display_data"] != [i for i in wrapped if i[0] == "display_data"]:
        return "display_data differs"
    return None


# -- running ----------------------------------------------------------------------------------

def snapshot_files(folder: Path) -> dict[str, str]:
    """relative path -> xxh3_64 of the content, for every file under folder."""
    found: dict[str, str] = {}
    for root, dirs, files in os.walk(folder):
        dirs[:] = sorted(d for d in dirs if d not in IGNORED_DIRS)
        for name in files:
            path = Path(root, name)
            rel = path.relative_to(folder).as_posix()
            try:
                h = xxhash.xxh3_64()
                with open(path, "rb") as fh:
                    for chunk in iter(lambda fh=fh: fh.read(1 << 20), b""):
                        h.update(chunk)
                found[rel] = h.hexdigest()
            except OSError as exc:
                found[rel] = f"unreadable: {exc.__class__.__name__}"
    return found


def copy_folder(src: Path, dst: Path) -> Path:
    """A writable copy of src (the corpus may be read-only; a notebook writes beside its data)."""
    shutil.copytree(src, dst, ignore=shutil.ignore_patterns(*IGNORED_DIRS),
                    copy_function=shutil.copyfile)
    for root, dirs, files in os.walk(dst):
        for name in dirs + files:
            path = Path(root, name)
            path.chmod(path.stat().st_mode | 0o200)
    dst.chmod(dst.stat().st_mode | 0o200)
    return dst


@dataclass
class Executed:
    """What the kernel said: the executed notebook, and per cell index whether it ran and the
    error of its execute_reply (a UsageError is shown on stderr, not as an error output)."""
    nb: nbformat.NotebookNode
    seconds: float
    aborted: str | None
    ran: set[int]
    errors: dict[int, str]


def execute(nb: nbformat.NotebookNode, cwd: Path, env: dict[str, str], cell_timeout: float,
            deadline: float) -> Executed:
    """Run nb in a fresh kernel, errors allowed, each cell's timeout capped by the deadline."""
    def timeout(_cell: Any) -> int:
        return max(1, int(min(cell_timeout, deadline - time.monotonic())))

    ran: set[int] = set()
    errors: dict[int, str] = {}

    def executed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        ran.add(cell_index)

    def failed(cell: Any, cell_index: int, execute_reply: Any) -> None:
        content = execute_reply["content"]
        errors[cell_index] = f"{content.get('ename')}: {content.get('evalue', '')}"

    client = NotebookClient(
        nb, timeout=int(cell_timeout), timeout_func=timeout, kernel_name="python3",
        allow_errors=True, record_timing=False, interrupt_on_timeout=False,
        on_cell_executed=executed, on_cell_error=failed,
        resources={"metadata": {"path": str(cwd)}},
    )
    started = time.monotonic()
    aborted = None
    try:
        client.execute(env=env)
    except Exception as exc:  # a timeout or a dead kernel: keep what ran
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
        aborted = f"{type(exc).__name__}: {first}"
        if time.monotonic() >= deadline:
            aborted = "notebook timeout: " + aborted
    return Executed(nb, time.monotonic() - started, aborted, ran, errors)


def collect(name: str, ex: Executed, offset: int, cells: list[int],
            replacements: Sequence[tuple[str, str]], folder: Path) -> RunResult:
    run = RunResult(name, round(ex.seconds, 2), ex.aborted)
    for k, i in enumerate(cells):
        seen = comparable(ex.nb.cells[offset + k].get("outputs", []), replacements)
        error = seen.error
        if error is None and offset + k in ex.errors:
            error = normalise(ex.errors[offset + k], replacements)
        ran = offset + k in ex.ran
        run.cells[i] = CellResult(ok=ran and error is None, ran=ran, status=seen.status,
                                  reason=seen.reason, outputs=seen.outputs, error=error)
    for out in ex.nb.cells[-1].get("outputs", []):
        text = _text(out.get("text", "")) if out.get("output_type") == "stream" else ""
        if NS_MARKER in text:
            run.namespace = json.loads(text.split(NS_MARKER)[1])
    run.files = snapshot_files(folder)
    return run


def _env(cache_dir: Path) -> dict[str, str]:
    env = dict(os.environ, TASKCACHE_DIR=str(cache_dir))
    env.pop("TASKCACHE_DB_URL", None)
    return env


def bound_names(source: str) -> set[str]:
    """Top-level names a cell binds (for pointing at the cell behind a namespace difference)."""
    try:
        from IPython.core.inputtransformer2 import TransformerManager
        tree = ast.parse(TransformerManager().transform_cell(source))
    except Exception:
        return set()
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Name) and isinstance(node.ctx, ast.Store):
            names.add(node.id)
        elif isinstance(node, ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef):
            names.add(node.name)
        elif isinstance(node, ast.alias):
            names.add((node.asname or node.name).split(".")[0])
    return names


def run_notebook(path: str | Path, workdir: str | Path | None = None, *,
                 repeat_plain: bool = True, quick: bool = False, cell_timeout: float = 120,
                 notebook_timeout: float = 600) -> NotebookReport:
    """Run one notebook plain (twice with repeat_plain) and wrapped cold/warm1/warm2; compare.

    quick: %timeit runs its statement once (see quick_timeit)."""
    path = Path(path).resolve()
    own_tmp = workdir is None
    base = Path(tempfile.mkdtemp(prefix="differential-")) if own_tmp else Path(workdir)
    base = base / path.stem
    if base.exists():
        shutil.rmtree(base)
    base.mkdir(parents=True)
    nb = nbformat.read(path, as_version=4)
    cells = code_cells(nb)
    deadline = time.monotonic() + notebook_timeout
    runs: dict[str, RunResult] = {}
    try:
        plain_names = ("plain", "plain2") if repeat_plain else ("plain",)
        for name in plain_names:
            folder = copy_folder(path.parent, base / name)
            ex = execute(build_plain(nb, cells, quick), folder, _env(base / f"{name}-cache"),
                         cell_timeout, deadline)
            runs[name] = collect(name, ex, 0, cells, [(str(folder), "<WORKDIR>")], folder)
        folder = copy_folder(path.parent, base / "wrapped")
        cache = base / "cache"
        for name in WRAPPED_RUNS:
            if time.monotonic() >= deadline:
                runs[name] = RunResult(name, 0.0, "notebook timeout before the run started",
                                       {i: CellResult(ok=False, ran=False) for i in cells})
                continue
            ex = execute(build_wrapped(nb, cells, quick), folder, _env(cache), cell_timeout, deadline)
            runs[name] = collect(name, ex, 1, cells,
                                 [(str(folder), "<WORKDIR>"), (str(cache), "<CACHE>")], folder)
    finally:
        if own_tmp:
            shutil.rmtree(base.parent, ignore_errors=True)
    return compare(str(path), nb, cells, runs)


def compare(notebook: str, nb: nbformat.NotebookNode, cells: list[int],
            runs: dict[str, RunResult]) -> NotebookReport:
    plain = runs["plain"]
    plain2 = runs.get("plain2")
    rep = NotebookReport(notebook=notebook, cells_total=len(cells))
    rep.seconds = {n: r.seconds for n, r in runs.items()}
    rep.aborted = {n: r.aborted for n, r in runs.items() if r.aborted}
    rep.not_wrapped = [i for i in cells if not wrappable(nb.cells[i].source)]
    for i in cells:
        p = plain.cells[i]
        if not p.ok:
            rep.fail_plain.append(i)
        elif plain2 is not None and (not plain2.cells[i].ran or plain2.cells[i].outputs != p.outputs):
            rep.nondeterministic.append(i)
            rep.nondeterministic_why[i] = (describe(p.outputs, plain2.cells[i].outputs)
                                           if plain2.cells[i].ran else ["did not run"])
        else:
            rep.counted.append(i)
    ok_plain = [i for i in cells if plain.cells[i].ok]
    rep.wrapped_cells = [i for i in ok_plain if i not in rep.not_wrapped]
    cold = runs["cold"].cells
    rep.not_cached = {i: cold[i].reason or "no reason given" for i in rep.wrapped_cells
                      if cold[i].status == "not cached"}
    rep.cached_cells = [i for i in rep.wrapped_cells if i not in rep.not_cached]
    for name in WRAPPED_RUNS:
        run = runs[name]
        rep.fail_wrapped[name] = [i for i in ok_plain if run.cells[i].ran and not run.cells[i].ok]
        rep.statuses[name] = {i: run.cells[i].status for i in rep.cached_cells}
        rep.hits[name] = sum(1 for i in rep.cached_cells if run.cells[i].status == "hit")
        same = 0
        for i in rep.counted:
            c = run.cells[i]
            if not c.ran:
                continue
            if c.outputs == plain.cells[i].outputs:
                same += 1
                continue
            src = nb.cells[i].source
            what = describe(plain.cells[i].outputs, c.outputs)
            if (guess := hint(src, plain.cells[i].outputs, c.outputs)) is not None:
                what.insert(0, f"[{guess}]")
            rep.cell_diffs.append(CellDiff(i, name, c.status, _excerpt(src, 200), what))
        rep.identical[name] = same
        for i in rep.fail_wrapped[name]:
            if i in rep.counted or i in rep.nondeterministic:
                if not any(d.cell == i and d.run == name for d in rep.cell_diffs):
                    rep.cell_diffs.append(CellDiff(i, name, run.cells[i].status,
                                                   _excerpt(nb.cells[i].source, 200),
                                                   [f"fails wrapped: {run.cells[i].error}"]))
    # namespace and files: what differs between two plain runs is nondeterministic
    noisy_names = set()
    noisy_files = set()
    if plain2 is not None:
        noisy_names = {k for k in set(plain.namespace) | set(plain2.namespace)
                       if plain.namespace.get(k) != plain2.namespace.get(k)}
        noisy_files = {k for k in set(plain.files) | set(plain2.files)
                       if plain.files.get(k) != plain2.files.get(k)}
    rep.nondeterministic_names = sorted(noisy_names)
    rep.nondeterministic_files = sorted(noisy_files)
    binders = {i: bound_names(nb.cells[i].source) for i in cells}
    for name in WRAPPED_RUNS:
        run = runs[name]
        lines = []
        if not run.namespace:
            lines.append("no namespace recorded (the run stopped before its last cell)")
        else:
            for var in sorted(set(plain.namespace) | set(run.namespace)):
                if var in noisy_names:
                    continue
                a, b = plain.namespace.get(var), run.namespace.get(var)
                if a == b:
                    continue
                where = [i for i in cells if var in binders[i]]
                at = f" (bound in cells {where})" if where else ""
                if a is None:
                    lines.append(f"{var}: only wrapped ({b[0]}){at}")
                elif b is None:
                    lines.append(f"{var}: missing wrapped (plain: {a[0]}){at}")
                elif a[0] != b[0]:
                    lines.append(f"{var}: type {a[0]} plain vs {b[0]} wrapped{at}")
                else:
                    lines.append(f"{var}: {a[0]} hash {a[1][:12]} plain vs {b[1][:12]} wrapped{at}")
        if lines:
            rep.namespace_diffs[name] = lines
        flines = []
        for rel in sorted(set(plain.files) | set(run.files)):
            if rel in noisy_files:
                continue
            a, b = plain.files.get(rel), run.files.get(rel)
            if a == b:
                continue
            if a is None:
                flines.append(f"{rel}: only wrapped")
            elif b is None:
                flines.append(f"{rel}: missing wrapped")
            else:
                flines.append(f"{rel}: content differs")
        if flines:
            rep.file_diffs[name] = flines
    rep.cell_diffs.sort(key=lambda d: (d.cell, WRAPPED_RUNS.index(d.run)))
    return rep


def notebooks_in(paths: Iterable[str | Path]) -> list[Path]:
    found: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir():
            found += sorted(q for q in p.rglob("*.ipynb") if not IGNORED_DIRS & set(q.parts))
        else:
            found.append(p)
    return found


def run_paths(paths: Iterable[str | Path], workdir: str | Path | None = None, *, jobs: int = 1,
              **options: Any) -> list[NotebookReport]:
    """run_notebook over every notebook in paths (folders searched recursively)."""
    notebooks = notebooks_in(paths)
    if jobs <= 1:
        return [run_notebook(nb, workdir, **options) for nb in notebooks]
    with ProcessPoolExecutor(jobs) as pool:
        futures = [pool.submit(run_notebook, nb, workdir, **options) for nb in notebooks]
        return [f.result() for f in futures]


# -- targets and report -----------------------------------------------------------------------

def _pct(n: int, d: int) -> float:
    return 100.0 * n / d if d else 100.0


def targets(reports: Sequence[NotebookReport]) -> list[Target]:
    """Issue 12's targets over all notebooks together."""
    counted = sum(len(r.counted) for r in reports)
    identical = sum(r.identical_all() for r in reports)
    failing = sum(len({c for cs in r.fail_wrapped.values() for c in cs}) for r in reports)
    cached = sum(len(r.cached_cells) for r in reports)  # not counting what cold did not cache
    hits1 = sum(r.hits.get("warm1", 0) for r in reports)
    hits2 = sum(r.hits.get("warm2", 0) for r in reports)
    ident = _pct(identical, counted)
    h1, h2 = _pct(hits1, cached), _pct(hits2, cached)
    return [
        Target("cells identical cold, warm1 and warm2", ident, ">= 99 %", ident >= 99.0,
               f"{identical}/{counted}"),
        Target("cells that work plain and fail wrapped", failing, "== 0", failing == 0,
               f"{failing}"),
        Target("hits on warm1 among cached cells", h1, ">= 98 %", h1 >= 98.0, f"{hits1}/{cached}"),
        Target("hits on warm2 among cached cells", h2, "== 100 %", h2 >= 100.0, f"{hits2}/{cached}"),
    ]


def _cells(cells: Iterable[int], limit: int = 12) -> str:
    cells = list(cells)
    text = ", ".join(map(str, cells[:limit]))
    return text + (f", … (+{len(cells) - limit})" if len(cells) > limit else "") if cells else "-"


def _grouped(per_run: dict[str, list[str]]) -> list[str]:
    """One line per difference, labelled with the runs that show it."""
    runs_of: dict[str, list[str]] = {}
    for run, diffs in per_run.items():
        for line in diffs:
            runs_of.setdefault(line, []).append(run)
    return [f"      {'/'.join(runs)}: {line}" for line, runs in runs_of.items()]


def format_report(reports: Sequence[NotebookReport], details: bool = True) -> str:
    head = (f"{'notebook':<14} {'cells':>5} {'fail':>5} {'nondet':>6} {'count':>5} "
            f"{'wrapfail':>8} {'same cold':>9} {'warm1':>6} {'warm2':>6} {'all':>6} "
            f"{'nocache':>7} {'hit w1':>8} {'hit w2':>8} {'ns':>3} {'files':>5}  seconds p/c/w1/w2")
    lines = ["", head, "-" * len(head)]
    for r in reports:
        n = len(r.counted)
        fails = len({c for cs in r.fail_wrapped.values() for c in cs})
        cached = len(r.cached_cells)
        secs = "/".join(f"{r.seconds.get(k, 0):.0f}" for k in ("plain", *WRAPPED_RUNS))
        lines.append(
            f"{Path(r.notebook).name:<14} {r.cells_total:>5} {len(r.fail_plain):>5} "
            f"{len(r.nondeterministic):>6} {n:>5} {fails:>8} "
            f"{_pct(r.identical.get('cold', 0), n):>8.1f}% {_pct(r.identical.get('warm1', 0), n):>5.1f}% "
            f"{_pct(r.identical.get('warm2', 0), n):>5.1f}% {_pct(r.identical_all(), n):>5.1f}% "
            f"{len(r.not_cached):>7} "
            f"{_pct(r.hits.get('warm1', 0), cached):>7.1f}% {_pct(r.hits.get('warm2', 0), cached):>7.1f}% "
            f"{sum(map(len, r.namespace_diffs.values())):>3} {sum(map(len, r.file_diffs.values())):>5}"
            f"  {secs}")
    lines += ["", "columns: cells = non-empty code cells; fail = fail plain (not counted); nondet = "
              "differ between two plain runs (not counted); count = cells compared; wrapfail = work "
              "plain, fail wrapped; same = identical to plain; all = identical in all three wrapped "
              "runs; nocache = wrapped cells the cold run ran but did not cache (taskcache said "
              "why: a value it cannot hash or store; not in the hit rates); hit = hits among cached "
              "cells (wrapped, work plain, not nocache); ns/files = differences",
              "", "targets (issue 12):"]
    for t in targets(reports):
        lines.append(f"  {'PASS' if t.passed else 'MISS'}  {t.name}: {t.value:.1f} ({t.detail}), "
                     f"goal {t.goal}")
    not_cached = sum(len(r.not_cached) for r in reports)
    lines.append(f"  (cached cells: {sum(len(r.cached_cells) for r in reports)}; not cached by the "
                 f"cold run, so not in the hit rates: {not_cached} of "
                 f"{sum(len(r.wrapped_cells) for r in reports)} wrapped cells that work plain)")
    if not details:
        return "\n".join(lines)
    for r in reports:
        lines += ["", f"== {r.notebook}"]
        for run, why in r.aborted.items():
            lines.append(f"  run {run} stopped early: {why}")
        lines.append(f"  fail plain (not counted): {_cells(r.fail_plain, 40)}")
        lines.append(f"  not wrapped (cell magic / magics or shell only): {_cells(r.not_wrapped, 40)}")
        if r.nondeterministic:
            lines.append(f"  nondeterministic (not counted): {_cells(r.nondeterministic, 40)}")
            for i, why in r.nondeterministic_why.items():
                lines += [f"      cell {i}, 2nd plain run: {w.replace('wrapped', 'plain2')}"
                          for w in why[:2]]
        for run in WRAPPED_RUNS:
            if r.fail_wrapped.get(run):
                lines.append(f"  work plain, fail {run}: {_cells(r.fail_wrapped[run], 40)}")
        if r.not_cached:
            lines.append(f"  not cached by the cold run (run every time; not in the hit rates): "
                         f"{len(r.not_cached)}")
            lines += [f"      cell {i}: {why}" for i, why in r.not_cached.items()]
        for run in ("warm1", "warm2"):
            misses = [f"{i}:{s or 'no status'}" for i, s in r.statuses.get(run, {}).items()
                      if s != "hit"]
            if misses:
                lines.append(f"  not a hit on {run}: {_cells(misses, 40)}")
        by_cell: dict[int, list[CellDiff]] = {}
        for d in r.cell_diffs:
            by_cell.setdefault(d.cell, []).append(d)
        for cell, diffs in by_cell.items():
            statuses = ", ".join(f"{d.run} {d.status or 'no status'}" for d in diffs)
            lines.append(f"  cell {cell} ({statuses}): {diffs[0].source}")
            groups: dict[tuple[str, ...], list[str]] = {}
            for d in diffs:
                groups.setdefault(tuple(d.what), []).append(d.run)
            for what, runs in groups.items():
                label = "/".join(runs)
                lines += [f"      {label}: {w}" for w in what]
        for title, per_run in (("namespace", r.namespace_diffs), ("files", r.file_diffs)):
            if per_run:
                lines.append(f"  {title} vs plain at the end of the run:")
                lines += _grouped(per_run)
        if r.nondeterministic_names or r.nondeterministic_files:
            lines.append(f"  nondeterministic names/files (not compared): "
                         f"{r.nondeterministic_names + r.nondeterministic_files}")
    return "\n".join(lines)


def json_report(reports: Sequence[NotebookReport]) -> dict[str, Any]:
    """Everything, for ``--json``: each notebook's report, the targets, and the cells the cold
    run did not cache with taskcache's reason (also inside each report)."""
    return {"reports": [asdict(r) for r in reports],
            "targets": [asdict(t) for t in targets(reports)],
            "not_cached": [{"notebook": Path(r.notebook).name, "cell": i, "reason": why}
                           for r in reports for i, why in r.not_cached.items()]}


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="+", help="notebooks, or folders searched for *.ipynb")
    parser.add_argument("--workdir", help="keep working copies and catalogs here (default: a temp "
                        "folder, removed)")
    parser.add_argument("--json", help="write the full report as JSON to this file")
    parser.add_argument("--cell-timeout", type=float, default=120)
    parser.add_argument("--timeout", type=float, default=600,
                        help="per notebook, all runs together (seconds)")
    parser.add_argument("--no-repeat-plain", action="store_true",
                        help="run plain once (faster; nondeterministic cells are then blamed)")
    parser.add_argument("--quick-timeit", action="store_true",
                        help="%%timeit measures once (-n1 -r1), in every run alike")
    parser.add_argument("--jobs", type=int, default=1, help="notebooks run in parallel")
    parser.add_argument("--summary", action="store_true", help="only the table and targets")
    args = parser.parse_args(argv)
    reports = run_paths(args.paths, args.workdir, jobs=args.jobs,
                        repeat_plain=not args.no_repeat_plain, quick=args.quick_timeit,
                        cell_timeout=args.cell_timeout,
                        notebook_timeout=args.timeout)
    print(format_report(reports, details=not args.summary))
    if args.json:
        Path(args.json).write_text(json.dumps(json_report(reports), indent=1, ensure_ascii=False))
    return 0 if all(t.passed for t in targets(reports)) else 1


if __name__ == "__main__":
    sys.exit(main())
