"""The detail view of one run: metadata, code, inputs, outputs, printed output, error and
lineage in tabs, plus the actions (load outputs, re-run, delete, copy id).

Tabs other than the overview are drawn when first opened, so selecting a run never reads
a large artifact it does not need."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import ipywidgets as w
from traitlets import Int, observe

from taskcache.api import delete_runs, namespace_values
from taskcache.browser import formatting as fmt
from taskcache.browser.lineage import layout_graph, lineage_graph, render_svg
from taskcache.lifecycle.runner import Runner
from taskcache.records import CELL_DISPLAY, RunRecord

TABS = ("Overview", "Code", "Inputs", "Outputs", "Printed output", "Error", "Lineage")
PREVIEW_LIMIT = 32 * 1024 * 1024  # bytes: larger outputs are described, not read


def _button(description: str, css: str, **kwargs: Any) -> w.Button:
    """A button as wide as its label, never squeezed by its neighbours."""
    button = w.Button(description=description,
                      layout=w.Layout(width="auto", flex="0 0 auto", overflow="visible"),
                      **kwargs)
    button.add_class(css)
    return button


class RunDetail(w.VBox):
    """Shows ``run_id``; sets ``run_id`` itself when the user moves to a neighbouring run.

    ``guard(action, what)`` runs a catalog read and shows a readable message on failure;
    ``on_change(message)`` is called after an action changed the catalog (delete, re-run)."""

    run_id = Int(None, allow_none=True)

    def __init__(self, runner: Runner | None, *, shell: Any, guard: Callable[..., Any],
                 on_change: Callable[[str | None], None]) -> None:
        self.runner, self._shell, self._guard, self._on_change = runner, shell, guard, on_change
        self._record: RunRecord | None = None
        self._drawn: set[int] = set()
        self._title = w.HTML()
        self._title.add_class("tc-detail-title")
        self._load = _button("Load outputs", "tc-action-load", icon="download",
                             tooltip="put this run's outputs into the notebook's namespace")
        self._rerun = _button("Re-run", "tc-action-rerun", icon="refresh")
        self._delete = _button("Delete", "tc-action-delete", icon="trash", button_style="danger")
        self._copy = w.HTML()
        self._copy.add_class("tc-action-copy")
        self._confirm_text = w.HTML(layout=w.Layout(flex="1 1 240px", min_width="0"))
        self._confirm_text.add_class("tc-delete-text")
        self._confirm_yes = _button("Delete", "tc-delete-yes", button_style="danger")
        self._confirm_no = _button("Cancel", "tc-delete-no")
        self._confirm = w.HBox([self._confirm_text, self._confirm_yes, self._confirm_no],
                               layout=w.Layout(display="none", align_items="center",
                                               flex_flow="row wrap"))
        self._confirm.add_class("tc-delete-confirm")
        self._message = w.HTML(layout=w.Layout(flex="1 1 200px", min_width="0"))
        self._message.add_class("tc-detail-message")
        self._message.add_class("tc-action-message")
        # moves the detail into view after a click shows another run (see bring_into_view)
        self._scroll = w.HTML(layout=w.Layout(height="0px", overflow="hidden", margin="0"))
        self._scrolls = 0
        self._rerunning = False
        self._output = w.Output()
        self._output.add_class("tc-action-output")
        self._pages = {name: w.HTML() for name in TABS}
        self._producers = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self._producers.add_class("tc-input-producers")
        self._neighbours = w.HBox(layout=w.Layout(flex_flow="row wrap"))
        self._neighbours.add_class("tc-lineage-nav")
        self._pages["Lineage"].add_class("tc-lineage")
        tab_children = [w.VBox([self._pages[name]]) for name in TABS]
        tab_children[TABS.index("Inputs")].children += (self._producers,)
        tab_children[TABS.index("Lineage")].children += (self._neighbours,)
        self._tabs = w.Tab(tab_children, titles=TABS)
        self._tabs.add_class("tc-detail-tabs")
        for button, handler in ((self._load, self._on_load_click),
                                (self._rerun, self._on_rerun_click),
                                (self._delete, self._on_delete_click),
                                (self._confirm_yes, self._on_confirm_yes_click),
                                (self._confirm_no, self._on_confirm_no_click)):
            button.on_click(handler)
        self._tabs.observe(self._on_tabs_selected_index, "selected_index")
        actions = w.HBox([self._load, self._rerun, self._delete, self._copy, self._message],
                         layout=w.Layout(align_items="center"))
        actions.add_class("tc-detail-actions")
        super().__init__([self._scroll, self._title, actions, self._confirm, self._output,
                          self._tabs], layout=w.Layout(display="none", margin="10px 0 0 0"))
        self.add_class("tc-detail")

    @property
    def record(self) -> RunRecord | None:
        return self._record

    def reload(self) -> None:
        """Re-read the shown run (after a refresh): keeps the open tab."""
        self._show(self.run_id, keep_tab=True)

    # -- traits -------------------------------------------------------------------------
    @observe("run_id")
    def _on_run_id_change(self, change: dict) -> None:
        if not self._rerunning:  # a re-run moves to its new run and keeps what it printed
            self._message.value = ""
            self._output.clear_output()
        self._show(change["new"], keep_tab=False)

    def bring_into_view(self) -> None:
        """After a click that shows another run: ask the front end to scroll the detail's top
        into view if it is off screen (a long table, a short window). An image that fails to
        load runs the scroll; a new counter each time makes the front end draw a new one."""
        self._scrolls += 1
        self._scroll.value = (
            f'<img alt="" data-n="{self._scrolls}" src="data:," style="display:none" '
            "onerror=\"var d=this.closest('.tc-detail');"
            "if(d){d.scrollIntoView({block:'nearest'});}\"/>")

    def _show(self, run_id: int | None, *, keep_tab: bool) -> None:
        self._confirm.layout.display = "none"
        record = None if run_id is None or self.runner is None else self._guard(
            lambda: self.runner.catalog.get_run(run_id), f"reading run #{run_id}")
        self._record = record
        if record is None:
            self.layout.display = "none"
            return
        self.layout.display = "flex"
        self._title.value = (
            f'<span style="font-size:15px"><b>run #{record.id}</b> '
            f"{fmt.esc(record.task)}</span> {fmt.status_badge(record.status)} "
            f'<span class="tc-muted tc-mono">taskcache.run({record.id})</span>')
        self._copy.value = (
            f'<button class="jupyter-button widget-button tc-copy-id" '
            f'title="copy the run id ({record.id})" '
            f"onclick=\"navigator.clipboard.writeText('{record.id}')\">copy id</button>")
        completed = record.status == "completed" and not record.invalid_reason
        self._load.disabled = not completed or self._rerunning
        self._rerun.disabled = (record.kind != "cell" or record.status == "running"
                                or self._rerunning)
        self._rerun.tooltip = (
            "run this cell again with --force in this notebook" if record.kind == "cell"
            else "function arguments are not stored: call f.force(...) in the notebook")
        self._delete.disabled = record.status == "running" or self._rerunning
        self._drawn = set()
        if not keep_tab:  # a failed run opens on its error
            self._tabs.selected_index = TABS.index("Error") if record.error_type else 0
        self._draw(0)
        self._draw(self._tabs.selected_index or 0)

    # -- tabs ---------------------------------------------------------------------------
    def _on_tabs_selected_index(self, change: dict) -> None:
        if change["new"] is not None:
            self._draw(change["new"])

    def _draw(self, index: int) -> None:
        record = self._record
        if record is None or index in self._drawn:
            return
        self._drawn.add(index)
        name = TABS[index]
        page = self._pages[name]
        if name == "Overview":
            history = self._guard(lambda: self.runner.catalog.history(record.id), "history") or []
            page.value = fmt.overview_html(record, history)
        elif name == "Code":
            page.value = fmt.code_html(record.source)
        elif name == "Inputs":
            page.value = fmt.inputs_html(record.inputs)
            self._producers.children = [
                self._goto_button(i.producer_run_id, f"{i.name} ← #{i.producer_run_id}",
                                  "tc-input-producer")
                for i in record.inputs if i.producer_run_id]
        elif name == "Outputs":
            page.value = fmt.outputs_html(record.artifacts, self._previews(record))
        elif name == "Printed output":
            page.value = self._printed(record)
        elif name == "Error":
            page.value = fmt.error_html(record)
        elif name == "Lineage":
            self._draw_lineage(record)

    def _previews(self, record: RunRecord) -> dict[str, str]:
        previews: dict[str, str] = {}
        for artifact in record.artifacts:
            if artifact.name == "__display__":
                continue
            if artifact.size > PREVIEW_LIMIT:
                previews[artifact.name] = (f"<i>{fmt.format_bytes(artifact.size)}: too large "
                                           "to preview here; use Load outputs</i>")
                continue
            try:
                previews[artifact.name] = fmt.preview_html(self.runner.load_artifact(artifact))
            except Exception as exc:  # a preview must never break the panel
                previews[artifact.name] = fmt.message_html(f"cannot preview: {exc}")
        return previews

    def _printed(self, record: RunRecord) -> str:
        display = next((a for a in record.artifacts if a.name == CELL_DISPLAY), None)
        if display is None:
            return "<i>no printed output was stored for this run</i>"
        try:
            return fmt.printed_html(self.runner.load_artifact(display))
        except Exception as exc:
            return fmt.message_html(f"cannot read the printed output: {exc}")

    def _draw_lineage(self, record: RunRecord) -> None:
        catalog = self.runner.catalog
        graph = self._guard(lambda: lineage_graph(record, catalog.upstream, catalog.downstream),
                            "reading lineage")
        if graph is None:
            return
        nodes, edges = graph
        if len(nodes) <= 1:
            self._pages["Lineage"].value = (
                "<i>no lineage: no input of this run came from another run's output, and no "
                "run has read its outputs yet</i>")
        else:
            self._pages["Lineage"].value = (
                '<div style="overflow:auto;max-width:100%">'
                + render_svg(layout_graph(nodes, edges)) + "</div>")
        up = {e.source for e in edges if e.target == record.id}
        down = {e.target for e in edges if e.source == record.id}
        labels = {n.id: n.label for n in nodes}
        self._neighbours.children = (
            [self._goto_button(i, f"↑ {labels[i]}", "tc-lineage-goto") for i in sorted(up)]
            + [self._goto_button(i, f"↓ {labels[i]}", "tc-lineage-goto") for i in sorted(down)])

    def _goto_button(self, run_id: int, text: str, css: str) -> w.Button:
        button = _button(text, css, tooltip=f"show run #{run_id}")
        button.on_click(lambda _b, target=run_id: self._go_to(target))
        return button

    def _go_to(self, run_id: int) -> None:
        self.run_id = run_id
        self.bring_into_view()

    # -- actions ------------------------------------------------------------------------
    def _on_load_click(self, _button: w.Button) -> None:
        record = self._record
        if record is None:
            return
        if self._shell is None:
            self._say(f"no IPython shell here: use taskcache.run({record.id}).outputs", "error")
            return
        values = self._guard(lambda: namespace_values(record, runner=self.runner),
                             f"loading the outputs of run #{record.id}")
        if values is None:
            return
        self._shell.user_ns.update(values)
        self._say(f"loaded {', '.join(values) or 'nothing'} from run #{record.id}", "ok")

    def _on_rerun_click(self, _button: w.Button) -> None:
        record = self._record
        if record is None or record.kind != "cell":
            return
        if self._shell is None:
            self._say("re-running a cell needs an IPython shell", "error")
            return
        line = str(record.env.get("magic_line") or f"%%task {record.task}")
        args = line.removeprefix("%%task").strip()
        newest_before = self.runner.catalog.query_runs(task=record.task, limit=1)
        self._output.clear_output()
        self._set_running(True)
        self._say(f"re-running {record.task} …", "info")
        try:
            with self._output:  # what the re-run prints and its status line stay shown here
                self._shell.run_cell_magic("task", f"{args} --force".strip(), record.source)
            newest = self.runner.catalog.query_runs(task=record.task, limit=1)
            if newest and newest != newest_before:
                self.run_id = newest[0].id
                message = f"re-ran {record.task}: run #{newest[0].id} ({newest[0].status})"
            else:
                message = f"re-ran {record.task}: nothing new was recorded"
        finally:
            self._set_running(False)
        self._on_change(None)
        self._say(message, "ok")

    def _set_running(self, running: bool) -> None:
        """While a re-run runs: its button says so and the actions wait."""
        self._rerunning = running
        for button in (self._load, self._rerun, self._delete):
            button.disabled = running
        self._rerun.description = "Re-running…" if running else "Re-run"
        if not running and self._record is not None:
            self._show(self.run_id, keep_tab=True)

    def _on_delete_click(self, _button: w.Button) -> None:
        record = self._record
        if record is None:
            return
        readers = self._guard(lambda: self.runner.catalog.downstream(record.id), "lineage") or []
        text = (f"Delete run #{record.id} ({fmt.esc(record.task)}) and its "
                f"{len(record.artifacts)} stored file(s)?")
        if readers:
            text += (" Runs " + ", ".join(f"#{r.id}" for r in readers)
                     + " read its outputs; their lineage moves to another run with the same "
                       "value if there is one.")
        self._confirm_text.value = text
        self._confirm.layout.display = "flex"

    def _on_confirm_yes_click(self, _button: w.Button) -> None:
        record = self._record
        self._confirm.layout.display = "none"
        if record is None:
            return
        if self._guard(lambda: delete_runs([record.id], runner=self.runner),
                       f"deleting run #{record.id}") is None:
            return
        self.run_id = None
        self._on_change(f"deleted run #{record.id} ({record.task})")

    def _on_confirm_no_click(self, _button: w.Button) -> None:
        self._confirm.layout.display = "none"

    def _say(self, text: str, level: str) -> None:
        self._message.value = fmt.message_html(text, level)
