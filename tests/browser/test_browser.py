"""The run browser driven from Python against a real catalog filled by real runs: filters,
paging, sorting, selection, detail content, actions and live refresh (another process).
Every test runs on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import textwrap
import time
from datetime import date, timedelta
from pathlib import Path

import pytest

import taskcache as tc
from taskcache.browser import RunBrowser
from taskcache.lifecycle import runner as runner_module


@pytest.fixture(params=["sqlite", "postgresql"], autouse=True)
def backend(request: pytest.FixtureRequest, cache_dir: Path) -> str:
    """The catalog's database for this test (set before the shell loads the extension)."""
    if request.param == "postgresql":
        if request.node.get_closest_marker("sqlite_only"):
            pytest.skip("works on the SQLite file itself")
        request.getfixturevalue("postgres_url")
    return request.param


@pytest.fixture
def ip(ip):
    ip.run_cell("import pandas as pd")
    return ip


@pytest.fixture
def filled(ip):
    """load -> total (lineage by value), a failing cell, and tagged function runs."""
    ip.run_cell("%%task load --tag raw\norders = pd.DataFrame({'x': range(10)})\nprint('loaded 10 rows')")
    ip.run_cell("%%task total\ntotal = int(orders.x.sum())")
    ip.run_cell("%%task boom\nraise ValueError('bad input on purpose')")
    return ip


@pytest.fixture
def browser(filled):
    panel = RunBrowser(shell=filled, live=False)
    yield panel
    panel.close()


def tasks(panel: RunBrowser) -> list[str]:
    return [r.task for r in panel.shown_runs]


def select(panel: RunBrowser, task: str) -> None:
    row = next(r for r in panel._table._rows
               if r.run_id is not None and r.run_id in {x.id for x in panel.shown_runs if x.task == task})
    row.select_button.click()


def test_table_lists_runs_newest_first_with_summary(browser):
    assert tasks(browser) == ["boom", "total", "load"]
    assert browser.total == 3
    header = browser._header.value
    assert "3 runs" in header and "tc-badge-failed" in header and "tc-badge-completed" in header
    row = browser._table._rows[2]
    assert row.select_button.description == f"#{browser.shown_runs[2].id}"
    assert row.layout.display == "flex" and browser._table._rows[3].layout.display == "none"
    assert "orders" in row._cells[-1].value  # the outputs column


def test_filters_run_in_sql(browser, filled):
    browser.status = "failed"
    assert tasks(browser) == ["boom"] and browser.total == 1
    assert browser._status_box.value == "failed"  # the trait and the control agree
    browser.status = None
    browser._text_box.value = "orders.x"  # free text over the source
    assert tasks(browser) == ["total"]
    browser.text = "100%_literal"
    assert tasks(browser) == [] and browser._table._empty.layout.display == "block"
    browser.text = None
    browser._tag_box.value = "raw"
    assert tasks(browser) == ["load"]
    browser.tag = None
    browser._task_box.value = "total"
    assert tasks(browser) == ["total"]
    browser.task = None
    browser.until = date.today() - timedelta(days=1)
    assert tasks(browser) == []
    browser.until, browser.since = date.today(), date.today()
    assert len(tasks(browser)) == 3
    browser.since = date.today() + timedelta(days=1)
    assert tasks(browser) == []


def test_hostile_filter_values_are_plain_text(browser):
    for hostile in ["x' OR 1=1 --", "%", "_", "'; DROP TABLE runs; --"]:
        browser.task = hostile
        assert tasks(browser) == []
    browser.task = None
    assert len(tasks(browser)) == 3


def test_paging_and_sorting(ip):
    ip.run_cell(textwrap.dedent("""
        import taskcache as tc
        @tc.task
        def square(i):
            return i * i
        for i in range(23):
            square(i)
    """))
    panel = RunBrowser(shell=ip, live=False, page_size=10)
    try:
        assert panel.total == 23 and len(panel.shown_runs) == 10
        assert panel._prev.disabled and not panel._next.disabled
        assert "1–10 of 23" in panel._page_label.value
        newest = panel.shown_runs[0].id
        panel._next.click()
        panel._next.click()
        assert panel.page == 2 and len(panel.shown_runs) == 3 and panel._next.disabled
        assert "21–23 of 23" in panel._page_label.value
        panel._prev.click()
        assert panel.page == 1 and panel.shown_runs[0].id == newest - 10
        panel.status = "completed"  # a filter goes back to the first page
        assert panel.page == 0
        run_button = panel._table._header_buttons["id"]
        run_button.click()  # same column: flip to ascending
        assert not panel.descending and "▲" in run_button.description
        assert [r.id for r in panel.shown_runs] == sorted(r.id for r in panel.shown_runs)
        assert panel.shown_runs[0].id == newest - 22
        panel._table._header_buttons["hit_count"].click()
        assert panel.sort == "hit_count" and panel.descending
        with pytest.raises(ValueError, match="cannot sort runs by"):
            tc.run(newest)._runner.catalog.query_runs(sort="id; DROP TABLE runs")
    finally:
        panel.close()


def test_selecting_a_run_fills_the_detail(browser):
    assert browser._detail.layout.display == "none"
    select(browser, "total")
    detail = browser._detail
    total = detail.record
    assert browser.selected_run_id == total.id and detail.layout.display == "flex"
    assert "tc-selected" in browser._table.row_for(total.id)._dom_classes
    assert "total" in detail._title.value and total.fingerprint in detail._pages["Overview"].value
    detail._tabs.selected_index = 1
    code = detail._pages["Code"].value
    assert "tc-code" in code and 'class="nb">int' in code and "sum" in code  # highlighted
    detail._tabs.selected_index = 2
    assert "orders" in detail._pages["Inputs"].value
    (producer,) = detail._producers.children
    assert producer.description.startswith("orders ← #")
    detail._tabs.selected_index = 3
    assert "total" in detail._pages["Outputs"].value and "45" in detail._pages["Outputs"].value
    producer.click()  # follow the input to the run that produced it
    load = detail.record
    assert load.task == "load" and browser.selected_run_id == load.id
    detail._tabs.selected_index = 3
    outputs = detail._pages["Outputs"].value
    assert "<table" in outputs and "DataFrame" in outputs  # the head as a table
    detail._tabs.selected_index = 4
    assert "loaded 10 rows" in detail._pages["Printed output"].value
    select(browser, "boom")
    detail._tabs.selected_index = 5
    error = detail._pages["Error"].value
    assert "ValueError" in error and "bad input on purpose" in error
    assert detail._load.disabled and not detail._delete.disabled


def test_lineage_picture_and_moving_to_a_neighbour(browser):
    select(browser, "load")
    detail = browser._detail
    detail._tabs.selected_index = 6
    svg = detail._pages["Lineage"].value
    assert svg.count('class="tc-lineage-node') == 2 and "orders" in svg  # edge label
    (down,) = detail._neighbours.children
    assert down.description.startswith("↓ #") and "total" in down.description
    down.click()
    assert detail.record.task == "total" and browser.selected_run_id == detail.record.id
    assert detail._tabs.selected_index == 0
    select(browser, "boom")
    detail._tabs.selected_index = 6
    assert "no lineage" in detail._pages["Lineage"].value


def test_load_pushes_outputs_into_the_namespace(browser, filled):
    select(browser, "load")
    del filled.user_ns["orders"]
    browser._detail._load.click()
    assert list(filled.user_ns["orders"].x) == list(range(10))
    assert "loaded orders" in browser._detail._message.value


def test_delete_asks_then_removes_rows_and_files(browser, cache_dir):
    select(browser, "load")
    record = browser._detail.record
    paths = [cache_dir / "artifacts" / a.relpath for a in record.artifacts]
    paths = [p if p.exists() else next(cache_dir.rglob(Path(a.relpath).name))
             for p, a in zip(paths, record.artifacts, strict=True)]
    assert all(p.exists() for p in paths)
    browser._detail._delete.click()
    confirm = browser._detail._confirm
    assert confirm.layout.display == "flex" and "total" not in browser._detail._confirm_text.value.split("(")[0]
    assert "read its outputs" in browser._detail._confirm_text.value  # total read them
    browser._detail._confirm_no.click()
    assert confirm.layout.display == "none" and tc.run(record.id).status == "completed"
    browser._detail._delete.click()
    browser._detail._confirm_yes.click()
    assert not any(p.exists() for p in paths)
    with pytest.raises(KeyError):
        tc.run(record.id)
    assert tasks(browser) == ["boom", "total"] and browser.selected_run_id is None
    assert "deleted run" in browser._message.value


def test_rerun_forces_the_cell_again(browser, filled):
    select(browser, "total")
    before = browser._detail.record.id
    browser._detail._rerun.click()
    after = browser._detail.record
    assert after.id > before and after.task == "total" and after.status == "completed"
    assert tasks(browser)[0] == "total" and browser.total == 4
    assert filled.user_ns["total"] == 45


def test_rerun_is_disabled_for_function_runs(ip):
    ip.run_cell("import taskcache as tc\n@tc.task\ndef f(x):\n    return x\nf(1)")
    panel = RunBrowser(shell=ip, live=False)
    try:
        select(panel, panel.shown_runs[0].task)
        assert panel._detail._rerun.disabled and "force" in panel._detail._rerun.tooltip
    finally:
        panel.close()


WORKER = textwrap.dedent("""
    import sys, time
    import taskcache as tc

    @tc.task
    def slow(seconds):
        time.sleep(seconds)
        return seconds

    slow(float(sys.argv[1]))
""")


def test_live_refresh_sees_another_process(browser, tmp_path, cache_dir):
    browser.refresh_interval = 0.2
    browser.live = True
    assert browser.polling
    script = tmp_path / "worker.py"
    script.write_text(WORKER)
    proc = subprocess.Popen([sys.executable, str(script), "3"], env=_env(cache_dir))
    try:
        running = _wait_for(lambda: [r for r in browser.shown_runs if r.task.endswith("slow")])
        assert running[0].status == "running"
        select(browser, running[0].task)
        assert browser._detail.record.status == "running" and browser._detail._delete.disabled
        assert proc.wait(timeout=60) == 0
        done = _wait_for(lambda: [r for r in browser.shown_runs
                                  if r.task.endswith("slow") and r.status == "completed"])
        assert done[0].id == running[0].id
        assert browser._detail.record.status == "completed"  # the detail follows too
    finally:
        proc.kill()
    browser.close()
    assert not browser.polling


@pytest.mark.sqlite_only
def test_a_locked_catalog_shows_a_message_not_a_traceback(filled, cache_dir):
    """WAL readers are never blocked, so the table keeps working; a write (delete) that
    cannot get the lock says so inside the panel and works once the lock is gone."""
    tc.configure(busy_timeout_seconds=0.2)
    panel = RunBrowser(shell=filled, live=False)
    holder = sqlite3.connect(cache_dir / "catalog.db", isolation_level=None)
    try:
        holder.execute("BEGIN IMMEDIATE")
        holder.execute("UPDATE runs SET hit_count = hit_count WHERE id = 1")
        panel._refresh_button.click()
        assert panel.total == 3 and panel._message.value == ""
        select(panel, "boom")
        panel._detail._delete.click()
        panel._detail._confirm_yes.click()
        assert "could not finish deleting run" in panel._message.value
        assert "locked" in panel._message.value and "Traceback" not in panel._message.value
        assert panel.total == 3 and panel._detail.record.task == "boom"
        holder.execute("ROLLBACK")
        panel._detail._delete.click()
        panel._detail._confirm_yes.click()
        assert tasks(panel) == ["total", "load"]
    finally:
        holder.close()
        panel.close()


@pytest.mark.sqlite_only
def test_an_unreachable_catalog_shows_a_message(tmp_path):
    runner_module.reset()
    (tmp_path / "not-a-folder").write_text("a file where the catalog's folder should be")
    tc.configure(db_url=f"sqlite:///{tmp_path}/not-a-folder/catalog.db")
    panel = RunBrowser(live=False)
    try:
        assert "could not finish opening the catalog" in panel._message.value
        assert panel.shown_runs == []
    finally:
        panel.close()


def _env(cache_dir: Path) -> dict[str, str]:
    import os

    return {**os.environ, "TASKCACHE_DIR": str(cache_dir)}


def _wait_for(probe, timeout: float = 30.0):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        found = probe()
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError("the panel did not pick up the change in time")


def test_deleting_a_producer_relinks_lineage_to_an_equal_value(filled):
    filled.run_cell("%%task load --tag raw --force\norders = pd.DataFrame({'x': range(10)})")
    filled.run_cell("%%task total --force\ntotal = int(orders.x.sum())")
    total = tc.runs(task="total").index[0]
    newer_load, older_load = tc.runs(task="load").index[:2]
    assert [r.id for r in tc.run(total).upstream()] == [newer_load]
    panel = RunBrowser(shell=filled, live=False)
    try:
        panel.selected_run_id = int(newer_load)
        panel._detail._delete.click()
        panel._detail._confirm_yes.click()
        assert [r.id for r in tc.run(total).upstream()] == [older_load]
    finally:
        panel.close()


def _panels_shown(ip) -> int:
    return sum("application/vnd.jupyter.widget-view+json" in o["data"]
               for o in ip.display_pub.outputs)


def test_browse_as_the_last_line_of_a_cell_shows_one_panel(filled):
    filled.run_cell("import taskcache as tc", store_history=True)
    result = filled.run_cell("tc.browse(live=False)", store_history=True)
    panel = result.result
    assert _panels_shown(filled) == 1 and repr(panel) == "<taskcache run browser: 3 runs>"
    filled.run_cell("b = tc.browse(status='failed', live=False)", store_history=True)
    assert _panels_shown(filled) == 2  # displayed by browse(), kept for scripting
    assert repr(filled.user_ns["b"]) == "<taskcache run browser: 1 run, status='failed'>"
    filled.run_cell("b", store_history=True)  # asked for again in a later cell: shown again
    assert _panels_shown(filled) == 3
    filled.run_cell("%taskcache browse --no-live", store_history=True)
    assert _panels_shown(filled) == 4
    for shown in (panel, filled.user_ns["b"]):
        shown.close()


def test_task_filter_matches_part_of_a_name_and_hides_the_detail_it_filters_out(browser):
    select(browser, "total")
    assert browser._detail.layout.display == "flex"
    browser._task_box.value = "OT"  # any part of the name, any case
    assert tasks(browser) == ["total"] and browser.selected_run_id is not None
    browser._task_box.value = "oa"
    assert tasks(browser) == ["load"]
    assert browser.selected_run_id is None and browser._detail.layout.display == "none"


def test_header_overview_and_failed_run_as_a_person_reads_them(browser, cache_dir, backend):
    header = browser._header.value
    assert "3 runs" in header
    if backend == "sqlite":  # the folder, not sqlite:////...
        assert str(cache_dir) in header and "sqlite:" not in header
    else:  # the URL, without a password if it has one
        from sqlalchemy.engine import make_url

        url = make_url(browser._runner.settings.db_url)
        assert url.render_as_string(hide_password=True) in header
        assert not url.password or str(url.password) not in header
    select(browser, "total")
    overview = browser._detail._pages["Overview"].value
    for once in ("<b>host / pid</b>", "<b>python</b>"):
        assert overview.count(once) == 1
    assert "<b>host</b>" not in overview and "<b>pid</b>" not in overview
    assert "None" not in overview and "<b>path</b>" not in overview  # no empty values
    assert "tc-error-line" not in overview
    select(browser, "boom")
    detail = browser._detail
    assert detail._tabs.selected_index == detail._tabs.children.index(
        detail._tabs.children[5]) == 5  # a failed run opens on its Error tab
    error = detail._pages["Error"].value
    assert error.index("tc-error-line") < error.index("tc-traceback")
    assert "ValueError: bad input on purpose</div>" in error
    assert "taskcache/" not in error and "Cell In[" in error
    assert "ValueError: bad input on purpose" in detail._pages["Overview"].value
    row = browser._table.row_for(detail.record.id)
    assert "ValueError: bad input on purpose" in row._cells[-1].value


def test_rerun_says_that_it_runs_and_what_it_did_beside_its_button(browser, filled):
    select(browser, "total")
    detail = browser._detail
    seen = []
    detail._rerun.observe(lambda c: seen.append((c["new"], detail._load.disabled,
                                                 detail._delete.disabled)), "description")
    detail._rerun.click()
    assert seen[0] == ("Re-running…", True, True) and seen[-1][0] == "Re-run"
    assert not detail._rerun.disabled and not detail._load.disabled
    message = detail._message.value
    assert f"re-ran total: run #{detail.record.id} (completed)" in message
    assert browser._message.value == ""  # said beside the buttons, not above the table


def test_the_header_names_a_database_without_its_password(tmp_path):
    from taskcache.browser.panel import catalog_location
    from taskcache.config import Settings

    assert catalog_location(Settings(cache_dir=tmp_path)) == str(tmp_path)
    shared = Settings(cache_dir=tmp_path, db_url="postgresql://ann:s3cret@db.lab/runs")
    assert catalog_location(shared) == "postgresql://ann:***@db.lab/runs"
