"""Pure HTML/text helpers of the run browser: no widgets, no database, unit-tested alone.

Everything that comes from the user (task names, source, reprs, tracebacks, printed
output) goes through ``html.escape`` here, so no cell can inject markup into the panel.
"""

from __future__ import annotations

import base64
import html
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any

from taskcache.browser.lineage import status_colour
from taskcache.describe import format_bytes
from taskcache.records import (
    CELL_RESULT,
    FILE_OUTPUT,
    OUTPUT_LABELS,
    ArtifactRecord,
    InputRecord,
    RunRecord,
    StateChange,
)

#: outputs a %%task cell stores besides its variables, and how the panel names them
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_CELL = "padding:2px 8px;text-align:left;vertical-align:top;border-bottom:1px solid #e9ecef"
_MONO = "font-family:var(--jp-code-font-family,monospace);font-size:12px"


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def format_duration(seconds: float | None) -> str:
    """1.5 ms, 820 ms, 3.2 s, 4 min 05 s, 2 h 03 min; "-" when unknown."""
    if seconds is None:
        return "-"
    if seconds < 1:
        return f"{seconds * 1000:.3g} ms"
    if seconds < 60:
        return f"{seconds:.3g} s"
    minutes, secs = divmod(int(round(seconds)), 60)
    if minutes < 60:
        return f"{minutes} min {secs:02d} s"
    hours, minutes = divmod(minutes, 60)
    return f"{hours} h {minutes:02d} min"


def format_when(moment: datetime | None, now: datetime | None = None) -> str:
    """Local wall-clock time; the date only when it is not today."""
    if moment is None:
        return "-"
    now = (now or datetime.now(UTC)).astimezone()
    local = moment.astimezone()
    return local.strftime("%H:%M:%S" if local.date() == now.date() else "%Y-%m-%d %H:%M")


def strip_ansi(text: str) -> str:
    return _ANSI.sub("", text)


def status_badge(status: str) -> str:
    fill, stroke = status_colour(status)
    return (f'<span class="tc-badge tc-badge-{esc(status)}" style="background:{fill};'
            f"color:{stroke};border:1px solid {stroke};border-radius:9px;padding:0 7px;"
            f'font-size:11px;white-space:nowrap">{esc(status)}</span>')


def output_names(run: RunRecord) -> str:
    """The outputs column: user-visible names, internal ones left out."""
    names = [a.name for a in run.artifacts if a.name not in OUTPUT_LABELS]
    return ", ".join(names)


def header_html(summary: Mapping[str, Any], catalog: str) -> str:
    """Catalog summary: runs by status, hits, compute time saved, disk used."""
    badges = " ".join(
        f"{status_badge(status)}&nbsp;{count:,}"
        for status, count in sorted(summary.get("by_status", {}).items())
    )
    return (
        f'<div style="display:flex;flex-wrap:wrap;gap:18px;align-items:baseline">'
        f'<b style="font-size:14px">taskcache runs</b>'
        f'<span class="tc-summary-runs">{summary.get("runs", 0):,} runs</span>'
        f"<span>{badges}</span>"
        f'<span class="tc-summary-hits">{summary.get("hits", 0):,} hits</span>'
        f'<span>{format_duration(summary.get("time_saved", 0.0))} saved</span>'
        f'<span>{format_bytes(summary.get("disk_bytes", 0))} on disk</span>'
        f'<span style="color:#868e96;{_MONO}">{esc(catalog)}</span></div>'
    )


def table_html(rows: Iterable[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """An HTML table from cells that are already HTML (callers escape)."""
    head = ""
    if header:
        head = "<tr>" + "".join(f'<th style="{_CELL}">{h}</th>' for h in header) + "</tr>"
    body = "".join(
        "<tr>" + "".join(f'<td style="{_CELL}">{cell}</td>' for cell in row) + "</tr>"
        for row in rows
    )
    return f'<table style="border-collapse:collapse;font-size:12px">{head}{body}</table>'


def overview_html(run: RunRecord, history: Sequence[StateChange] = ()) -> str:
    """Metadata, environment and state history of a run."""
    env = dict(run.env)
    packages = env.pop("packages", None) or {}
    rows = [
        ("status", status_badge(run.status)
         + (f" <i>{esc(run.invalid_reason)}</i>" if run.invalid_reason else "")),
        ("task", f"<b>{esc(run.task)}</b> ({esc(run.kind)})"),
        ("created", esc(format_when(run.created_at))),
        ("started", esc(format_when(run.started_at))),
        ("finished", esc(format_when(run.finished_at))),
        ("duration", esc(format_duration(run.duration))),
        ("hits", f"{run.hit_count:,}" + (f" (last {esc(format_when(run.last_hit_at))})"
                                         if run.last_hit_at else "")),
        ("fingerprint", f'<code style="{_MONO}">{esc(run.fingerprint)}</code>'),
        ("code hash", f'<code style="{_MONO}">{esc(run.code_hash)}</code>'),
        ("host / pid", f"{esc(run.host or '-')} / {esc(run.pid or '-')}"),
    ]
    if run.tags:
        rows.append(("tags", esc(", ".join(run.tags))))
    if run.user_version:
        rows.append(("version", esc(run.user_version)))
    if run.parent_run_id:
        rows.append(("called from", f"run #{run.parent_run_id}"))
    rows += [(esc(key), esc(_short(value, 200))) for key, value in sorted(env.items())]
    if packages:
        rows.append(("packages", esc(", ".join(f"{k} {v}" for k, v in sorted(packages.items())))))
    parts = [table_html((f"<b>{k}</b>", v) for k, v in rows)]
    if history:
        parts.append("<div style='margin-top:8px'><b>history</b></div>")
        parts.append(table_html(
            (esc(format_when(h.at)), esc(h.from_status or "-") + " → " + esc(h.to_status),
             esc(h.reason or "")) for h in history))
    return "".join(parts)


def code_html(source: str) -> str:
    """Syntax-highlighted Python (inline styles: no stylesheet needed in any front end)."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - pygments comes with IPython
        return f'<pre class="tc-code" style="{_MONO}">{esc(source)}</pre>'
    body = highlight(source, PythonLexer(), HtmlFormatter(noclasses=True, nowrap=True))
    return (f'<pre class="tc-code" style="{_MONO};background:#f8f9fa;padding:8px;'
            f'overflow:auto;max-height:420px">{body}</pre>')


def inputs_html(inputs: Sequence[InputRecord]) -> str:
    if not inputs:
        return "<i>no inputs</i>"
    return table_html(
        ((f"<b>{esc(i.name)}</b>", esc(i.type_name),
          f'<code style="{_MONO}">{esc(_hash_text(i.value_hash))}</code>',
          f"run #{i.producer_run_id}" if i.producer_run_id else "-",
          f'<code style="{_MONO}">{esc(_short(i.repr, 120))}</code>') for i in inputs),
        header=("name", "type", "value hash", "produced by", "value"),
    )


def _hash_text(value_hash: str) -> str:
    """The first 16 hex digits of a value hash (a file's: "file:xxh3_128:<hex>")."""
    return value_hash.rsplit(":", 1)[-1][:16]


def artifact_shape(a: ArtifactRecord) -> str:
    if a.shape:
        return " × ".join(f"{n:,}" for n in a.shape)
    if a.rows is not None:
        return f"{a.rows:,} rows" + (f" × {len(a.columns)} cols" if a.columns else "")
    return "-"


def outputs_html(artifacts: Sequence[ArtifactRecord], previews: Mapping[str, str]) -> str:
    """One table row per output, with a preview (already HTML) under each."""
    shown = [a for a in artifacts if a.name not in OUTPUT_LABELS or a.name == CELL_RESULT]
    if not shown:
        return "<i>no stored outputs</i>"
    parts = []
    for a in shown:
        name = OUTPUT_LABELS.get(a.name, a.name)
        if a.name.startswith(FILE_OUTPUT):
            name = f"file {a.repr or a.name.removeprefix(FILE_OUTPUT)}"
        parts.append(
            f'<div class="tc-output" style="margin-bottom:10px"><b>{esc(name)}</b> '
            f'<span style="color:#495057">{esc(a.type_name)} · {esc(artifact_shape(a))} · '
            f"{esc(format_bytes(a.size))} · {esc(a.codec)} · "
            f'<code style="{_MONO}">{esc(_hash_text(a.value_hash))}</code></span>'
            f'<div style="margin-top:4px">{previews.get(a.name, "")}</div></div>'
        )
    return "".join(parts)


def preview_html(value: Any, *, rows: int = 5, chars: int = 2000) -> str:
    """A small, safe preview: a DataFrame's head as a table, JSON pretty-printed, an array
    summarised; anything else by its (truncated) repr."""
    kind = type(value).__module__.split(".")[0] + "." + type(value).__name__
    if kind in ("pandas.DataFrame", "pandas.Series"):
        head = value.head(rows)
        frame = head.to_frame() if kind == "pandas.Series" else head
        return f'<div style="overflow:auto;font-size:12px">{frame.to_html(max_cols=12)}</div>'
    if kind == "numpy.ndarray":
        return f'<pre style="{_MONO}">{esc(array_summary(value))}</pre>'
    if kind == "pyarrow.Table":
        return preview_html(value.slice(0, rows).to_pandas(), rows=rows, chars=chars)
    if isinstance(value, dict | list | tuple | str | int | float | bool) or value is None:
        try:
            text = json.dumps(value, indent=2, default=repr, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
        return f'<pre style="{_MONO}">{esc(_short(text, chars))}</pre>'
    return f'<pre style="{_MONO}">{esc(_short(repr(value), chars))}</pre>'


def array_summary(array: Any) -> str:
    """shape, dtype and, for numbers, min / mean / max (NaN-aware)."""
    import numpy as np

    text = f"shape {tuple(array.shape)}, dtype {array.dtype}"
    if array.size and np.issubdtype(array.dtype, np.number) and not np.iscomplexobj(array):
        with np.errstate(all="ignore"):
            text += (f", min {np.nanmin(array):.6g}, mean {np.nanmean(array):.6g}, "
                     f"max {np.nanmax(array):.6g}")
    return text + "\n" + _short(np.array2string(array, threshold=20, edgeitems=3), 600)


def printed_html(items: Sequence[Mapping[str, Any]]) -> str:
    """What the cell printed and displayed the first time (the recorded output items)."""
    if not items:
        return "<i>the cell printed nothing</i>"
    parts = []
    for item in items:
        if item.get("output_type") == "stream":
            colour = "#c92a2a" if item.get("name") == "stderr" else "inherit"
            parts.append(f'<pre style="{_MONO};margin:0;color:{colour}">'
                         f"{esc(strip_ansi(str(item.get('text', ''))))}</pre>")
            continue
        data = item.get("data") or {}
        png = data.get("image/png")
        if isinstance(png, bytes):
            png = base64.b64encode(png).decode()
        if png:
            parts.append(f'<img style="max-width:100%" src="data:image/png;base64,{esc(png)}"/>')
        elif "text/plain" in data:
            parts.append(f'<pre style="{_MONO};margin:0">{esc(data["text/plain"])}</pre>')
    return "".join(parts)


def error_html(run: RunRecord) -> str:
    if not run.error_type and not run.traceback:
        return "<i>no error</i>"
    text = strip_ansi(run.traceback or f"{run.error_type}: {run.error_message}")
    return (f'<pre class="tc-traceback" style="{_MONO};background:#fff5f5;color:#862e2e;'
            f'padding:8px;overflow:auto;max-height:420px">{esc(text)}</pre>')


def message_html(text: str, level: str = "error") -> str:
    colour = {"error": "#c92a2a", "info": "#1864ab", "ok": "#2b8a3e"}.get(level, "#495057")
    return f'<div style="color:{colour};padding:4px 0">{esc(text)}</div>'


def _short(value: object, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
