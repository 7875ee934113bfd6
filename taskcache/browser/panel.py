"""RunBrowser: the ipywidgets panel over the run catalog (``taskcache.browse()``).

Filters, sorting and paging are traits; every change runs one count and one page query
in SQL (never loading the whole catalog). A poller thread re-reads the page when the
catalog's change marker moves, so runs in other kernels and scripts are seen progressing;
it stops when the panel is closed or no longer displayed anywhere."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import ipywidgets as w
from sqlalchemy.exc import SQLAlchemyError
from traitlets import Bool, Float, Instance, Int, Unicode, link, observe

from taskcache.browser import formatting as fmt
from taskcache.browser.detail import RunDetail
from taskcache.browser.live import Poller
from taskcache.browser.table import RunTable
from taskcache.browser.theme import stylesheet
from taskcache.config import Settings
from taskcache.errors import TaskcacheError
from taskcache.lifecycle.environment import cell_number
from taskcache.lifecycle.runner import Runner, current_settings, get_runner
from taskcache.records import STATUSES, RunRecord

T = TypeVar("T")
FILTERS = ("task", "status", "tag", "text", "since", "until")
_ANY = "any"


def _day_start(day: date) -> datetime:
    """Local midnight of ``day`` as an aware datetime (the catalog compares in UTC)."""
    return datetime(day.year, day.month, day.day).astimezone()


def catalog_location(settings: Settings) -> str:
    """Where the catalog is, for people: its folder when it is the default SQLite file
    there, else its URL without a password."""
    if settings.db_url == f"sqlite:///{settings.cache_dir / 'catalog.db'}":
        return str(settings.cache_dir)
    try:
        from sqlalchemy.engine import make_url

        return make_url(settings.db_url).render_as_string(hide_password=True)
    except Exception:  # not a URL SQLAlchemy can read: the engine says so elsewhere
        return settings.db_url


class RunBrowser(w.VBox):
    """Browse the runs of the catalog: header summary, filters, a paged sortable table, and
    the detail and lineage of the selected run."""

    task = Unicode(None, allow_none=True)
    status = Unicode(None, allow_none=True)
    tag = Unicode(None, allow_none=True)
    text = Unicode(None, allow_none=True)
    since = Instance(date, allow_none=True)
    until = Instance(date, allow_none=True)
    sort = Unicode("id")
    descending = Bool(True)
    page = Int(0)
    page_size = Int(25)
    total = Int(0)
    selected_run_id = Int(None, allow_none=True)
    live = Bool(True)
    refresh_interval = Float(2.0)

    def __init__(self, *, runner: Runner | None = None, shell: Any = None, page_size: int = 25,
                 live: bool = True, refresh_interval: float = 2.0, **filters: Any) -> None:
        self._shell = shell
        self._runner: Runner | None = None
        self._poller: Poller | None = None
        self._message = w.HTML()
        self._message.add_class("tc-message")
        self._displayed_in: int | None = None  # the cell in which browse() displayed it
        self._runner = runner or self._guard(get_runner, "opening the catalog")
        self._lock = threading.RLock()
        self._marker: tuple[int, int, int] | None = None
        self._hidden_since: float | None = None
        self._ready = False  # pages load from refresh() once the panel is built, not before
        self._header = w.HTML()
        self._header.add_class("tc-header")
        self._task_box = self._filter(w.Combobox(placeholder="task", ensure_option=False),
                                      "tc-filter-task")
        self._status_box = self._filter(w.Dropdown(options=[_ANY, *STATUSES], value=_ANY),
                                        "tc-filter-status")
        self._tag_box = self._filter(w.Combobox(placeholder="tag"), "tc-filter-tag")
        self._text_box = self._filter(w.Text(placeholder="search name or code"), "tc-filter-text")
        self._since_box = self._filter(w.DatePicker(description="from"), "tc-filter-since",
                                       width="230px")
        self._until_box = self._filter(w.DatePicker(description="to"), "tc-filter-until",
                                       width="230px")
        for picker in (self._since_box, self._until_box):
            picker.style.description_width = "36px"
        self._refresh_button = w.Button(icon="refresh", tooltip="refresh now",
                                        layout=w.Layout(width="36px"))
        self._refresh_button.add_class("tc-refresh")
        self._live_box = w.Checkbox(value=live, description="live", indent=False,
                                    layout=w.Layout(width="70px"))
        self._live_box.add_class("tc-live")
        self._launch_toggle = w.ToggleButton(description="Launch", icon="play",
                                             tooltip="launch a @task from a form",
                                             layout=w.Layout(width="auto"))
        self._launch_toggle.add_class("tc-launch-toggle")
        self._launch_box = w.VBox()  # the Launch form, built when first opened
        self._launch_toggle.observe(self._toggle_launch, names="value")
        filters_box = w.HBox([self._task_box, self._status_box, self._tag_box, self._text_box,
                              self._since_box, self._until_box, self._refresh_button,
                              self._live_box, self._launch_toggle],
                             layout=w.Layout(flex_flow="row wrap"))
        filters_box.add_class("tc-filters")
        self._prev = w.Button(description="‹ newer", layout=w.Layout(width="auto"))
        self._prev.add_class("tc-page-prev")
        self._next = w.Button(description="older ›", layout=w.Layout(width="auto"))
        self._next.add_class("tc-page-next")
        self._page_label = w.HTML()
        self._page_label.add_class("tc-page-label")
        pager = w.HBox([self._prev, self._page_label, self._next],
                       layout=w.Layout(align_items="center"))
        pager.add_class("tc-pager")
        self._table = RunTable(page_size=page_size)
        table_box = w.Box([self._table])
        table_box.add_class("tc-table-scroll")
        self._detail = RunDetail(self._runner, shell=shell, guard=self._guard,
                                 on_change=self._on_detail_change)
        self._detail.layout.flex = "1 1 480px"
        self._detail.layout.min_width = "0"
        # the detail beside the table when there is room for both, below it otherwise
        runs_box = w.VBox([self._message, table_box, pager],
                          layout=w.Layout(flex="1 1 600px", min_width="0", margin="0 12px 0 0"))
        body = w.HBox([runs_box, self._detail],
                      layout=w.Layout(flex_flow="row wrap", align_items="flex-start"))
        body.add_class("tc-body")
        self._wire()
        super().__init__([w.HTML(stylesheet()), self._header, filters_box, self._launch_box,
                          body], page_size=page_size, live=live,
                         refresh_interval=refresh_interval)
        self.add_class("tc-browser")
        with self.hold_trait_notifications():
            for name, value in filters.items():
                if name not in FILTERS:
                    raise TypeError(f"unknown filter {name!r}; filters are {', '.join(FILTERS)}")
                setattr(self, name, value)
        self._sync_filter_boxes()
        self._ready = True
        self.refresh()
        self._view_count = 0  # let the front end count views, so polling can stop unseen
        if live:
            self._start_polling()

    def _toggle_launch(self, change: Any) -> None:
        if change["new"] and not self._launch_box.children:
            from taskcache.browser.launch import LaunchForm, notebook_tasks

            namespace = self._shell.user_ns if self._shell is not None else None
            tasks = self._guard(lambda: notebook_tasks(namespace), "finding tasks")
            self._launch_box.children = [LaunchForm(tasks or {}, on_launched=lambda _: self.refresh())]
        self._launch_box.layout.display = None if change["new"] else "none"

    @property
    def launch_form(self) -> Any:
        """The Launch form (opened on first use), for scripting: ``b.launch_form.fill(n=3)``."""
        if not self._launch_toggle.value:
            self._launch_toggle.value = True
        return self._launch_box.children[0]

    # -- public -------------------------------------------------------------------------
    @property
    def shown_runs(self) -> list[RunRecord]:
        return self._table.shown

    def refresh(self) -> None:
        """Re-read the summary, the current page and the selected run."""
        with self._lock:
            if self._runner is None:  # the catalog could not be opened: try again
                self._runner = self._guard(get_runner, "opening the catalog")
                if self._runner is None:
                    return
                self._detail.runner = self._runner
            marker = self._guard(self._runner.catalog.change_marker, "reading the catalog")
            if marker is None:
                return
            self._marker = marker
            summary = self._guard(self._catalog_summary, "reading the catalog summary")
            if summary is not None:
                self._header.value = fmt.header_html(summary,
                                                     catalog_location(self._runner.settings))
                self._task_box.options = tuple(summary["by_task"])
                self._tag_box.options = tuple(self._guard(self._runner.catalog.tag_names,
                                                          "reading tags") or ())
            self._load_page()
            if self._detail.run_id is not None:
                self._detail.reload()

    def close(self) -> None:
        self.stop_polling()
        super().close()

    def stop_polling(self) -> None:
        if self._poller is not None:
            self._poller.stop()
            self._poller = None

    @property
    def polling(self) -> bool:
        return self._poller is not None and self._poller.running

    # -- data ---------------------------------------------------------------------------
    def _query(self) -> dict[str, Any]:
        return {
            "task_contains": self.task or None, "status": self.status, "tag": self.tag or None,
            "text": self.text or None,
            "since": _day_start(self.since) if self.since else None,
            "until": _day_start(self.until + timedelta(days=1)) if self.until else None,
        }

    def _catalog_summary(self) -> dict[str, Any]:
        self._runner.hits.flush()
        return self._runner.catalog.summary()

    def _load_page(self) -> None:
        if self._runner is None:
            return
        catalog, query = self._runner.catalog, self._query()
        total = self._guard(lambda: catalog.count_runs(**query), "counting runs")
        if total is None:
            return
        last_page = max(0, (total - 1) // self.page_size)
        if self.page > last_page:
            self.page = last_page  # observed: loads that page instead
            return
        page = self._guard(lambda: catalog.query_runs(
            **query, sort=self.sort, descending=self.descending, full=True,
            limit=self.page_size, offset=self.page * self.page_size), "reading runs")
        if page is None:
            return
        self.total = total
        self._table.show(page)
        first = self.page * self.page_size + 1 if total else 0
        self._page_label.value = (f"&nbsp;{first:,}–{first + len(page) - 1:,} of {total:,} "
                                  f"runs&nbsp;" if total else "&nbsp;no runs&nbsp;")
        self._prev.disabled = self.page == 0
        self._next.disabled = self.page >= last_page

    def _guard(self, action: Callable[[], T], what: str) -> T | None:
        """Run a catalog read; on failure show a readable message in the panel (never a
        traceback) and return None."""
        try:
            result = action()
        except (TaskcacheError, SQLAlchemyError, OSError) as exc:
            reason = str(getattr(exc, "orig", None) or exc).splitlines()[0]
            where = (self._runner.settings if self._runner else current_settings()).db_url
            self._message.value = fmt.message_html(
                f"taskcache could not finish {what} ({where}): {reason}. If another process "
                "holds the catalog, this clears on the next refresh.")
            return None
        if self._message.value and "could not" in self._message.value:
            self._message.value = ""
        return result

    # -- live ---------------------------------------------------------------------------
    def _start_polling(self) -> None:
        self.stop_polling()
        self._poller = Poller(self._on_poll_tick, self.refresh_interval,
                              name=f"taskcache-browser-{id(self):x}").start()

    def _on_poll_tick(self) -> None:
        if self._unseen_for() > 60:  # output cleared or notebook closed: stop polling
            self.stop_polling()
            return
        marker = None if self._runner is None else self._guard(
            self._runner.catalog.change_marker, "polling the catalog")
        if marker is None or marker != self._marker:
            self.refresh()

    def _unseen_for(self) -> float:
        """Seconds since the front end last showed a view of the panel (0 while shown, or
        while the front end does not count views)."""
        if not self._view_count:
            if self._view_count == 0 and self._hidden_since is None and self.comm is not None:
                self._hidden_since = time.monotonic()
        else:
            self._hidden_since = None
        return 0.0 if self._hidden_since is None else time.monotonic() - self._hidden_since

    # -- wiring -------------------------------------------------------------------------
    @staticmethod
    def _filter(widget: w.Widget, css: str, width: str = "170px") -> w.Widget:
        widget.layout = w.Layout(width=width)
        widget.add_class(css)
        return widget

    def _wire(self) -> None:
        link((self._table, "selected_id"), (self._detail, "run_id"))
        self._table.observe(self._on_table_sort, ["sort", "descending"])
        self._table.observe(self._on_table_clicks, "clicks")
        self._detail.observe(self._on_detail_run_id, "run_id")
        self._task_box.observe(self._on_task_box_value, "value")
        self._status_box.observe(self._on_status_box_value, "value")
        self._tag_box.observe(self._on_tag_box_value, "value")
        self._text_box.observe(self._on_text_box_value, "value")
        self._since_box.observe(self._on_since_box_value, "value")
        self._until_box.observe(self._on_until_box_value, "value")
        self._prev.on_click(self._on_prev_click)
        self._next.on_click(self._on_next_click)
        self._refresh_button.on_click(self._on_refresh_button_click)
        self._live_box.observe(self._on_live_box_value, "value")

    def _sync_filter_boxes(self) -> None:
        self._task_box.value = self.task or ""
        self._status_box.value = self.status or _ANY
        self._tag_box.value = self.tag or ""
        self._text_box.value = self.text or ""
        self._since_box.value = self.since
        self._until_box.value = self.until

    def _on_task_box_value(self, change: dict) -> None:
        self.task = change["new"] or None

    def _on_status_box_value(self, change: dict) -> None:
        self.status = None if change["new"] == _ANY else change["new"]

    def _on_tag_box_value(self, change: dict) -> None:
        self.tag = change["new"] or None

    def _on_text_box_value(self, change: dict) -> None:
        self.text = change["new"] or None

    def _on_since_box_value(self, change: dict) -> None:
        self.since = change["new"]

    def _on_until_box_value(self, change: dict) -> None:
        self.until = change["new"]

    def _on_prev_click(self, _button: w.Button) -> None:
        self.page = max(0, self.page - 1)

    def _on_next_click(self, _button: w.Button) -> None:
        self.page += 1

    def _on_refresh_button_click(self, _button: w.Button) -> None:
        self.refresh()

    def _on_live_box_value(self, change: dict) -> None:
        self.live = change["new"]

    def _on_table_sort(self, change: dict) -> None:
        self.sort, self.descending = self._table.sort, self._table.descending

    def _on_table_clicks(self, change: dict) -> None:
        self._detail.bring_into_view()

    def _on_detail_run_id(self, change: dict) -> None:
        self.selected_run_id = change["new"]

    def _on_detail_change(self, message: str | None) -> None:
        self.refresh()
        if message:
            self._message.value = fmt.message_html(message, "ok")

    # -- observers ----------------------------------------------------------------------
    @observe(*FILTERS)
    def _on_filter_change(self, change: dict) -> None:
        self._sync_filter_boxes()
        if not self._ready:
            return
        if self.page != 0:
            self.page = 0  # observed: reloads
        else:
            with self._lock:
                self._load_page()
        if self.selected_run_id is not None and all(
                r.id != self.selected_run_id for r in self.shown_runs):
            self.selected_run_id = None  # the filters hide it: close its detail

    @observe("sort", "descending")
    def _on_sort_change(self, change: dict) -> None:
        self._table.sort, self._table.descending = self.sort, self.descending
        if self._ready:
            with self._lock:
                self._load_page()

    @observe("page")
    def _on_page_change(self, change: dict) -> None:
        if self._ready:
            with self._lock:
                self._load_page()

    @observe("page_size")
    def _on_page_size_change(self, change: dict) -> None:
        self._table.page_size = change["new"]
        if self._ready:
            with self._lock:
                self._load_page()

    @observe("selected_run_id")
    def _on_selected_run_id_change(self, change: dict) -> None:
        self._table.selected_id = change["new"]

    @observe("live")
    def _on_live_change(self, change: dict) -> None:
        self._live_box.value = change["new"]
        if change["new"]:
            self._start_polling()
        else:
            self.stop_polling()


    # -- display --------------------------------------------------------------------------
    def __repr__(self) -> str:
        """Stands in for the panel where widgets are not drawn (and in saved notebooks)."""
        shown = {name: getattr(self, name) for name in FILTERS if getattr(self, name)}
        filters = "".join(f", {name}={value!r}" for name, value in shown.items())
        runs = "run" if self.total == 1 else "runs"
        return f"<taskcache run browser: {self.total:,} {runs}{filters}>"

    def _ipython_display_(self) -> None:
        """Show the panel, except as the result of the cell in which ``browse()`` has just
        shown it: ``tc.browse()`` as a cell's last line shows one panel, not two."""
        from IPython.display import display

        if self._displayed_in is not None and self._displayed_in == _cell_number(self._shell):
            self._displayed_in = None
            return
        display(self._repr_mimebundle_(), raw=True)


def _cell_number(shell: Any) -> int | None:
    return None if shell is None else cell_number(shell)


def browse(*, shell: Any = None, **options: Any) -> RunBrowser:
    """Display the run browser and return it, for scripting (filters as keywords: task,
    status, tag, text, since, until; page_size, live, refresh_interval). As a cell's last
    line it is displayed once."""
    from IPython.display import display

    if shell is None:
        from IPython import get_ipython

        shell = get_ipython()
    browser = RunBrowser(shell=shell, **options)
    display(browser)
    browser._displayed_in = _cell_number(shell)
    return browser
