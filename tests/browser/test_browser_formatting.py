"""The run browser's pure helpers: formatting and escaping, no widgets, no database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import pytest

from taskcache.browser import formatting as fmt
from taskcache.records import ArtifactRecord, InputRecord, RunRecord, StateChange

HOSTILE = "<script>alert('x')</script>&"


def record(**changes) -> RunRecord:
    now = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    fields = dict(
        id=7, task="train", kind="cell", fingerprint="f" * 32, code_hash="c" * 32,
        status="failed", created_at=now, started_at=now, finished_at=now + timedelta(seconds=2),
        duration=2.0, source="x = 1\nprint(x)", tags=("exp",), user_version=None,
        error_type="ValueError", error_message="bad", traceback="\x1b[31mValueError\x1b[0m: bad",
        host="box", pid=12, env={"python": "3.11", "packages": {"numpy": "2.4"}},
        lease_owner=None, lease_expires_at=None, hit_count=3, last_hit_at=None,
        parent_run_id=None,
    )
    fields.update(changes)
    return RunRecord(**fields)


@pytest.mark.parametrize(("seconds", "text"), [
    (None, "-"), (float("nan"), "-"), (0.0015, "1.5 ms"), (0.82, "820 ms"), (2.14, "2.1 s"),
    (59.99, "1 min 00 s"), (245, "4 min 05 s"), (7380, "2 h 03 min"),
])
def test_format_duration(seconds, text):
    assert fmt.format_duration(seconds) == text


@pytest.mark.parametrize(("size", "text"), [
    (None, "-"), (0, "0 B"), (512, "512 B"), (1536, "1.5 KB"), (2408415, "2.4 MB"),
    (999_999, "1.0 MB"), (3 * 10**15, "3,000.0 TB"),
])
def test_format_bytes(size, text):
    assert fmt.format_bytes(size) == text


def test_format_when_shows_the_date_only_for_other_days():
    now = datetime.now(UTC)
    assert len(fmt.format_when(now, now)) == len("10:00:00")
    assert fmt.format_when(now - timedelta(days=3), now).count("-") == 2
    assert fmt.format_when(None) == "-"


def test_user_text_is_escaped_everywhere():
    run = record(task=HOSTILE, source=HOSTILE, traceback=HOSTILE, error_message=HOSTILE,
                 tags=(HOSTILE,), env={HOSTILE: HOSTILE},
                 inputs=(InputRecord(HOSTILE, "h" * 32, HOSTILE, HOSTILE),))
    pieces = [fmt.overview_html(run, [StateChange(7, None, "running", run.created_at, HOSTILE)]),
              fmt.code_html(run.source), fmt.inputs_html(run.inputs), fmt.error_html(run),
              fmt.printed_html([{"output_type": "stream", "name": "stdout", "text": HOSTILE},
                                {"output_type": "display_data", "data": {"text/plain": HOSTILE}}]),
              fmt.preview_html(HOSTILE), fmt.preview_html({"k": HOSTILE}),
              fmt.header_html({"runs": 1, "by_status": {HOSTILE: 1}}, HOSTILE),
              fmt.status_badge(HOSTILE), fmt.message_html(HOSTILE)]
    for html in pieces:
        assert "<script" not in html and "alert" in html
    assert all("&lt;script&gt;" in html for html in pieces if "tc-code" not in html)


def test_error_html_strips_terminal_colours():
    html = fmt.error_html(record())
    assert "ValueError" in html and "\x1b" not in html and "[31m" not in html
    assert fmt.error_html(record(error_type=None, traceback=None)) == "<i>no error</i>"


def test_overview_lists_metadata_environment_and_history():
    html = fmt.overview_html(record(), [StateChange(7, "running", "failed", record().created_at, "boom")])
    for text in ("f" * 32, "box / 12", "exp", "numpy 2.4", "python", "running → failed", "boom"):
        assert text in html


def test_previews():
    frame = pd.DataFrame({"a": range(100), "b": ["x"] * 100})
    html = fmt.preview_html(frame)
    assert html.count("<tr") == 6  # header + the 5-row head
    assert "<table" in fmt.preview_html(frame["a"])
    summary = fmt.array_summary(np.array([1.0, np.nan, 3.0]))
    assert "shape (3,)" in summary and "min 1" in summary and "max 3" in summary
    assert "shape (2, 0)" in fmt.array_summary(np.zeros((2, 0)))
    pretty = fmt.preview_html({"b": [1, 2], "a": {"nested": True}})
    assert "&quot;nested&quot;: true" in pretty and "\n" in pretty
    assert "…" in fmt.preview_html("x" * 5000)


def test_printed_output_keeps_streams_and_images():
    html = fmt.printed_html([
        {"output_type": "stream", "name": "stdout", "text": "hello\n"},
        {"output_type": "stream", "name": "stderr", "text": "warn\n"},
        {"output_type": "display_data", "data": {"image/png": "iVBORw0KGgo=", "text/plain": "<Figure>"}},
    ])
    assert "hello" in html and 'class="tc-printed tc-stderr"' in html and "data:image/png;base64,iVBORw0KGgo=" in html
    assert "&lt;Figure&gt;" not in html  # the image is shown instead of its text stand-in
    assert "printed nothing" in fmt.printed_html([])


def test_outputs_hide_the_internal_display_record_and_name_the_cell_result():
    def art(name: str, **kw) -> ArtifactRecord:
        return ArtifactRecord(name=name, codec="json", relpath=f"{name}.json", size=10,
                              checksum="k", value_hash="v" * 32, type_name="int", **kw)

    html = fmt.outputs_html([art("__display__"), art("__result__"), art("df", rows=3, columns=("a",))],
                            {"df": "<p>preview</p>"})
    assert "printed output" not in html and "cell result" in html
    assert "3 rows × 1 cols" in html and "<p>preview</p>" in html
    run = record(artifacts=(art("__display__"), art("model")))
    assert fmt.output_names(run) == "model"


def test_a_figure_previews_as_a_thumbnail_and_a_frame_in_jupyterlab_table_style():
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib.figure import Figure

    figure = Figure(figsize=(6, 3))
    figure.add_subplot().plot([3, 1, 2])
    html = fmt.preview_html(figure)
    assert html.startswith('<img class="tc-thumbnail"') and "data:image/png;base64,iVBOR" in html
    table = fmt.preview_html(pd.DataFrame({"a": [1]}))
    assert 'class="jp-RenderedHTMLCommon"' in table and 'border="1"' not in table


def test_error_line_and_no_colour_literals_outside_the_badges():
    assert fmt.error_line("builtins.KeyError", "'amout'\nmore") == "KeyError: 'amout'"
    assert fmt.error_line("pandas.errors.ParserError", "") == "pandas.errors.ParserError"
    assert fmt.error_line(None, None) == ""
    run = record(inputs=(InputRecord("x", "h" * 32, "int", "1"),),
                 artifacts=(ArtifactRecord("y", "json", "y.json", 10, "k", "v" * 32, "int"),))
    pieces = [fmt.overview_html(run), fmt.code_html(run.source), fmt.inputs_html(run.inputs),
              fmt.outputs_html(run.artifacts, {}), fmt.error_html(run), fmt.message_html("m"),
              fmt.printed_html([{"output_type": "stream", "name": "stderr", "text": "w"}]),
              fmt.header_html({"runs": 1, "by_status": {}}, "/tmp/c")]
    import re

    for html in pieces:
        without_badges = re.sub(r'<span class="tc-badge[^>]*>', "", html)
        assert not re.search(r"#[0-9a-fA-F]{3,6}\b|rgb\(", without_badges), html
