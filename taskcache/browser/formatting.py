"""Pure HTML/text helpers of the run browser: no widgets, no database, unit-tested alone.

Everything that comes from the user (task names, source, reprs, tracebacks, printed
output) goes through ``html.escape`` here, so no cell can inject markup into the panel.
"""

from __future__ import annotations

import base64
import html
import io
import json
import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from taskcache.browser.lineage import status_colour
from taskcache.describe import error_line, format_bytes, format_duration, format_when
from taskcache.records import (
    CELL_RESULT,
    FILE_OUTPUT,
    OUTPUT_LABELS,
    ArtifactRecord,
    InputRecord,
    RunRecord,
    StateChange,
)

_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
#: environment keys the overview shows in rows of their own, or not at all
_ENV_SHOWN_ELSEWHERE = frozenset({"host", "pid", "packages", "magic_line"})


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


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
    """Catalog summary: runs by status, hits, compute time saved, disk used, and where the
    catalog is (``catalog``: a folder or a database URL without its password)."""
    badges = " ".join(
        f"{status_badge(status)}&nbsp;{count:,}"
        for status, count in sorted(summary.get("by_status", {}).items())
    )
    return (
        '<div class="tc-header-line">'
        '<b style="font-size:14px">taskcache runs</b>'
        f'<span class="tc-summary-runs">{_count(summary.get("runs", 0), "run")}</span>'
        + (f"<span>{badges}</span>" if badges else "")
        + f'<span class="tc-summary-hits">{_count(summary.get("hits", 0), "hit")}</span>'
        f'<span>{format_duration(summary.get("time_saved", 0.0))} saved</span>'
        f'<span>{format_bytes(summary.get("disk_bytes", 0))} on disk</span>'
        f'<span class="tc-muted tc-mono" title="{esc(catalog)}">{esc(catalog)}</span></div>'
    )


def table_html(rows: Iterable[Sequence[str]], header: Sequence[str] | None = None) -> str:
    """An HTML table from cells that are already HTML (callers escape)."""
    head = ""
    if header:
        head = "<tr>" + "".join(f"<th>{h}</th>" for h in header) + "</tr>"
    body = "".join("<tr>" + "".join(f"<td>{cell}</td>" for cell in row) + "</tr>"
                   for row in rows)
    return f'<table class="tc-table">{head}{body}</table>'


def error_box_html(run: RunRecord) -> str:
    """The error line of a failed run (type and message), or "" when it has none."""
    line = error_line(run.error_type, run.error_message)
    return f'<div class="tc-error-line">{esc(line)}</div>' if line else ""


def overview_html(run: RunRecord, history: Sequence[StateChange] = ()) -> str:
    """The error line of a failed run first, then metadata, environment (each key once,
    empty values left out) and state history."""
    env = {k: v for k, v in run.env.items()
           if k not in _ENV_SHOWN_ELSEWHERE and v not in (None, "", [], {})}
    packages = run.env.get("packages") or {}
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
        ("fingerprint", f'<code class="tc-mono">{esc(run.fingerprint)}</code>'),
        ("code hash", f'<code class="tc-mono">{esc(run.code_hash)}</code>'),
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
    parts = [error_box_html(run), table_html((f"<b>{k}</b>", v) for k, v in rows)]
    if history:
        parts.append("<div style='margin-top:8px'><b>history</b></div>")
        parts.append(table_html(
            (esc(format_when(h.at)), esc(h.from_status or "-") + " → " + esc(h.to_status),
             esc(h.reason or "")) for h in history))
    return "".join(parts)


def code_html(source: str) -> str:
    """Syntax-highlighted Python: pygments classes, coloured by the theme (theme.py)."""
    try:
        from pygments import highlight
        from pygments.formatters import HtmlFormatter
        from pygments.lexers import PythonLexer
    except ImportError:  # pragma: no cover - pygments comes with IPython
        return f'<pre class="tc-code">{esc(source)}</pre>'
    body = highlight(source, PythonLexer(), HtmlFormatter(nowrap=True))
    return f'<pre class="tc-code">{body}</pre>'


def inputs_html(inputs: Sequence[InputRecord]) -> str:
    if not inputs:
        return "<i>no inputs</i>"
    return table_html(
        ((f"<b>{esc(i.name)}</b>", esc(i.type_name),
          f'<code class="tc-mono">{esc(_hash_text(i.value_hash))}</code>',
          f"run #{i.producer_run_id}" if i.producer_run_id else "-",
          f'<code class="tc-mono">{esc(_short(i.repr, 120))}</code>') for i in inputs),
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
            f'<span class="tc-muted">{esc(a.type_name)} · {esc(artifact_shape(a))} · '
            f"{esc(format_bytes(a.size))} · {esc(a.codec)} · "
            f'<code class="tc-mono">{esc(_hash_text(a.value_hash))}</code></span>'
            f'<div style="margin-top:4px">{previews.get(a.name, "")}</div></div>'
        )
    return "".join(parts)


def preview_html(value: Any, *, rows: int = 5, chars: int = 2000) -> str:
    """A small, safe preview: a DataFrame's head as a table in JupyterLab's style, JSON
    pretty-printed, an array summarised, a figure as a thumbnail; anything else by its
    (truncated) repr."""
    kind = type(value).__module__.split(".")[0] + "." + type(value).__name__
    if kind in ("pandas.DataFrame", "pandas.Series"):
        head = value.head(rows)
        frame = head.to_frame() if kind == "pandas.Series" else head
        table = frame.to_html(max_cols=12, border=0)
        return f'<div class="jp-RenderedHTMLCommon" style="overflow:auto;padding:0">{table}</div>'
    if kind == "numpy.ndarray":
        return f'<pre class="tc-mono">{esc(array_summary(value))}</pre>'
    if kind == "pyarrow.Table":
        return preview_html(value.slice(0, rows).to_pandas(), rows=rows, chars=chars)
    if kind == "matplotlib.Figure":
        thumbnail = figure_thumbnail(value)
        if thumbnail:
            return (f'<img class="tc-thumbnail" alt="{esc(repr(value))}" '
                    f'src="data:image/png;base64,{thumbnail}"/>')
    if isinstance(value, dict | list | tuple | str | int | float | bool) or value is None:
        try:
            text = json.dumps(value, indent=2, default=repr, ensure_ascii=False)
        except (TypeError, ValueError):
            text = repr(value)
        return f'<pre class="tc-mono">{esc(_short(text, chars))}</pre>'
    return f'<pre class="tc-mono">{esc(_short(repr(value), chars))}</pre>'


def figure_thumbnail(figure: Any, dpi: int = 40) -> str | None:
    """A small PNG of a matplotlib figure, base64; None when it cannot be drawn."""
    buffer = io.BytesIO()
    try:
        figure.savefig(buffer, format="png", dpi=dpi)
    except Exception:  # a preview must never break the panel
        return None
    return base64.b64encode(buffer.getvalue()).decode()


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
            css = "tc-printed tc-stderr" if item.get("name") == "stderr" else "tc-printed"
            parts.append(f'<pre class="{css}" style="border:0;padding:0 0 2px 0">'
                         f"{esc(strip_ansi(str(item.get('text', ''))))}</pre>")
            continue
        data = item.get("data") or {}
        png = data.get("image/png")
        if isinstance(png, bytes):
            png = base64.b64encode(png).decode()
        if png:
            parts.append(f'<img style="max-width:100%" src="data:image/png;base64,{esc(png)}"/>')
        elif "text/plain" in data:
            parts.append(f'<pre class="tc-printed" style="border:0;padding:0">'
                         f'{esc(data["text/plain"])}</pre>')
    return "".join(parts)


def error_html(run: RunRecord) -> str:
    """The error line first, then the traceback (the user's frames, as recorded)."""
    if not run.error_type and not run.traceback:
        return "<i>no error</i>"
    text = strip_ansi(run.traceback or f"{run.error_type}: {run.error_message}")
    return error_box_html(run) + f'<pre class="tc-traceback">{esc(text)}</pre>'


def message_html(text: str, level: str = "error") -> str:
    """A one-line message; errors in the theme's error colour, the rest as plain text."""
    css = "tc-message-line tc-message-error" if level == "error" else "tc-message-line"
    mark = "✓ " if level == "ok" else ""
    return f'<div class="{css}">{mark}{esc(text)}</div>'


def _count(n: int, noun: str) -> str:
    return f"{n:,} {noun}" + ("" if n == 1 else "s")


def _short(value: object, limit: int) -> str:
    text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
