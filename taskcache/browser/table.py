"""The runs table: sortable column headers and a fixed pool of rows updated in place (no
widgets are created while paging). Clicking a run's id selects it (``selected_id``)."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as w
from ipywidgets.widgets.widget_string import HTMLStyle
from traitlets import Bool, Int, Unicode, observe

from taskcache.browser.formatting import (
    error_line,
    esc,
    format_duration,
    format_when,
    output_names,
    status_badge,
)
from taskcache.records import RunRecord

#: (sort key or None, title, flex of the column, its minimum width). Minimum widths keep
#: names and headers whole in a narrow window; the table scrolls sideways below them.
COLUMNS: tuple[tuple[str | None, str, str, str], ...] = (
    ("status", "status", "0 0 96px", "96px"),
    ("id", "run", "0 0 64px", "64px"),
    ("task", "task", "1 1 160px", "120px"),
    ("started_at", "started", "0 0 128px", "96px"),
    ("duration", "duration", "0 0 88px", "88px"),
    ("hit_count", "hits", "0 0 64px", "64px"),
    (None, "outputs / error", "2 1 200px", "130px"),
)


def _cell_layout(flex: str, min_width: str) -> w.Layout:
    return w.Layout(flex=flex, min_width=min_width, overflow="hidden", margin="0 4px 0 0")


class _Row(w.HBox):
    """One row of the table; ``run_id`` is the run it shows, None while unused. ``shared``
    holds the cells' layouts (one per column, then the id button's) and styles (the
    cells', the button's), shared by the rows of a table: they never change, and a table
    builds its rows several times faster without a layout and a style per cell."""

    def __init__(self, shared: Sequence[w.Widget]) -> None:
        self.run_id: int | None = None
        *layouts, button_layout, cell_style, button_style = shared
        self._cells = [w.HTML(layout=layout, style=cell_style) for layout in layouts]
        for cell in self._cells:
            cell.add_class("tc-cell")
        self.select_button = w.Button(layout=button_layout, style=button_style)
        self.select_button.add_class("tc-run-select")
        children = list(self._cells)
        children[1] = self.select_button
        super().__init__(children, layout=w.Layout(display="none", align_items="center"))
        self.add_class("tc-run-row")

    def show(self, run: RunRecord | None, selected: bool) -> None:
        self.run_id = run.id if run else None
        if run is None:
            self.layout.display = "none"
            return
        error = error_line(run.error_type, run.error_message)
        last = error or output_names(run)
        values = (status_badge(run.status), "",
                  f'<b title="{esc(run.task)}">{esc(run.task)}</b>',
                  esc(format_when(run.started_at or run.created_at)),
                  esc(format_duration(run.duration)), f"{run.hit_count:,}",
                  f'<span title="{esc(last)}">{esc(last)}</span>')
        for cell, value in zip(self._cells, values, strict=True):
            if cell.value != value:
                cell.value = value
        if error:
            self._cells[-1].add_class("tc-error-cell")
        else:
            self._cells[-1].remove_class("tc-error-cell")
        self.select_button.description = f"#{run.id}"
        self.select_button.tooltip = f"show run #{run.id} ({run.task})"
        self.mark(selected)
        self.layout.display = "flex"

    def mark(self, selected: bool) -> None:
        """Highlight the selected run (a CSS class: the theme gives its colours)."""
        if selected:
            self.add_class("tc-selected")
        else:
            self.remove_class("tc-selected")


class RunTable(w.VBox):
    """Rows of one page of runs. Traits: ``selected_id`` (set on click), ``sort`` and
    ``descending`` (set by clicking a column header)."""

    selected_id = Int(None, allow_none=True)
    clicks = Int(0)  # how many times a run id was clicked (the panel brings the detail in view)
    sort = Unicode("id")
    descending = Bool(True)
    page_size = Int(25)

    def __init__(self, page_size: int = 25) -> None:
        self._header_buttons: dict[str, w.Button] = {}
        header_cells: list[w.Widget] = []
        for key, title, flex, low in COLUMNS:
            if key is None:
                label = w.HTML(title, layout=_cell_layout(flex, low))
                label.add_class("tc-col-title")
                header_cells.append(label)
                continue
            button = w.Button(description=title, tooltip=f"sort by {title}",
                              layout=w.Layout(flex=flex, min_width=low, width="auto",
                                              height="28px", margin="0 4px 0 0"))
            button.add_class("tc-sort-button")
            button.on_click(self._on_header_click)
            self._header_buttons[key] = button
            header_cells.append(button)
        self._header = w.HBox(header_cells)
        self._header.add_class("tc-run-table-header")
        self._empty = w.HTML("<i>no runs match these filters</i>", layout=w.Layout(display="none"))
        self._rows: list[_Row] = []
        self._shown: list[RunRecord] = []
        _, _, flex, low = COLUMNS[1]
        self._row_shared = [*(_cell_layout(flex, low) for _, _, flex, low in COLUMNS),
                            w.Layout(flex=flex, min_width=low, width="auto", height="26px",
                                     margin="0 4px 0 0"), HTMLStyle(), w.ButtonStyle()]
        super().__init__([self._header, self._empty], page_size=page_size)
        self.add_class("tc-run-table")
        self._build_rows()
        self._label_headers()

    @property
    def shown(self) -> list[RunRecord]:
        return list(self._shown)

    def show(self, runs: Sequence[RunRecord]) -> None:
        """Display one page of runs (at most page_size)."""
        self._shown = list(runs[: self.page_size])
        for index, row in enumerate(self._rows):
            run = self._shown[index] if index < len(self._shown) else None
            row.show(run, selected=run is not None and run.id == self.selected_id)
        self._empty.layout.display = "none" if self._shown else "block"

    def row_for(self, run_id: int) -> _Row | None:
        return next((row for row in self._rows if row.run_id == run_id), None)

    # -- handlers ------------------------------------------------------------------------
    def _on_row_click(self, button: w.Button) -> None:
        row = next(row for row in self._rows if row.select_button is button)
        if row.run_id is not None:
            self.selected_id = row.run_id
            self.clicks += 1

    def _on_header_click(self, button: w.Button) -> None:
        key = next(k for k, b in self._header_buttons.items() if b is button)
        if key == self.sort:
            self.descending = not self.descending
        else:
            self.sort, self.descending = key, key not in ("task", "status")

    @observe("selected_id")
    def _on_selected_id_change(self, change: dict) -> None:
        for row in self._rows:
            row.mark(row.run_id is not None and row.run_id == change["new"])

    @observe("sort", "descending")
    def _on_sort_change(self, change: dict) -> None:
        self._label_headers()

    @observe("page_size")
    def _on_page_size_change(self, change: dict) -> None:
        self._build_rows()
        self.show(self._shown)

    def _build_rows(self) -> None:
        for row in self._rows[self.page_size:]:
            row.close()
        self._rows = self._rows[: self.page_size]
        while len(self._rows) < self.page_size:
            row = _Row(self._row_shared)
            row.select_button.on_click(self._on_row_click)
            self._rows.append(row)
        self.children = (self._header, self._empty, *self._rows)

    def _label_headers(self) -> None:
        for key, button in self._header_buttons.items():
            title = next(t for k, t, _, _ in COLUMNS if k == key)
            arrow = (" ▼" if self.descending else " ▲") if key == self.sort else ""
            button.description = title + arrow
