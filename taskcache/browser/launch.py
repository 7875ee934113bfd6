"""The run browser's Launch tab: a form built from a task's type hints (the same
``tasks.params`` the Jupyter server's page uses), a Launch button, and the launched run's
status, result or error next to it.

Tasks are the ``@task`` functions of the notebook and of the modules listed in the
``tasks`` setting. A task from an importable module runs in a process of its own (the
``tasks.launcher``); a task defined in the notebook runs in a background thread of the kernel
(a new process could not import it). Either way the notebook stays usable meanwhile."""

from __future__ import annotations

import datetime as dt
import json
import threading
import time
from collections.abc import Callable, Mapping
from typing import Any

import ipywidgets as w

from taskcache.browser import formatting as fmt
from taskcache.lifecycle.runner import current_settings, get_runner
from taskcache.records import RETURN
from taskcache.tasks.discovery import DiscoveredTask, discover, task_definition
from taskcache.tasks.launcher import Launcher
from taskcache.tasks.params import ArgumentError, Param, bind_arguments, describe_params

__all__ = ["LaunchForm", "notebook_tasks"]

_POLL = 0.3


def notebook_tasks(namespace: Mapping[str, Any] | None) -> dict[str, DiscoveredTask]:
    """The launchable tasks: ``@task`` functions in ``namespace`` (a notebook's), then those
    of the modules in the ``tasks`` setting (module errors are left to the page)."""
    found: dict[str, DiscoveredTask] = {}
    for attr, obj in (namespace or {}).items():
        definition = task_definition(obj)
        if definition is not None and not attr.startswith("_"):
            found[definition.name] = DiscoveredTask(
                name=definition.name, module=getattr(obj, "__module__", "__main__"),
                qualname=getattr(obj, "__qualname__", attr), function=obj,
                params=describe_params(definition.fn), doc=(definition.fn.__doc__ or "").strip())
    for name, task in discover(current_settings().tasks, entry_points=False).tasks.items():
        found.setdefault(name, task)
    return found


def _field(param: Param) -> w.Widget:
    """The input widget of one parameter, holding its default."""
    default = param.default
    layout = w.Layout(width="auto", min_width="260px")
    style = {"description_width": "initial"}
    label = param.name + (" *" if param.required else "")
    if param.kind == "bool":
        return w.Checkbox(value=bool(default), description=label, indent=False)
    if param.kind == "choice":
        options = ([("(none)", None)] if param.optional else []) + [(str(c), c) for c in param.choices]
        return w.Dropdown(options=options, value=default if default in param.choices else options[0][1],
                          description=label, layout=layout, style=style)
    if param.kind == "int" and not param.optional:
        return w.IntText(value=default if isinstance(default, int) else 0, description=label,
                         layout=layout, style=style)
    if param.kind == "float" and not param.optional:
        return w.FloatText(value=default if isinstance(default, int | float) else 0.0,
                           description=label, layout=layout, style=style)
    if param.kind == "date":
        value = dt.date.fromisoformat(default) if isinstance(default, str) else None
        return w.DatePicker(value=value, description=label, style=style)
    text = "" if default is None else (json.dumps(default) if param.kind == "json"
                                       or param.kind.startswith("list[") else str(default))
    return w.Text(value=text, description=label, placeholder=param.annotation or "JSON",
                  layout=layout, style=style)


def _value(param: Param, widget: w.Widget) -> Any:
    """What the form sends for one field: JSON-like, checked by ``bind_arguments``."""
    value = widget.value
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(widget, w.Text):
        if value == "":
            return None if (param.optional or param.required) else param.default
        if param.kind in ("int", "float", "json") or param.kind.startswith("list["):
            try:
                return json.loads(value)
            except ValueError:
                return value  # bind_arguments names the field and what it expected
    return value


class LaunchForm(w.VBox):
    """Pick a task, fill its form, launch; the result appears next to the button."""

    def __init__(self, tasks: Mapping[str, DiscoveredTask], *, launcher: Launcher | None = None,
                 on_launched: Callable[[int], None] | None = None) -> None:
        self.tasks = dict(tasks)
        self.launcher = launcher or Launcher()
        self._on_launched = on_launched
        self._fields: dict[str, w.Widget] = {}
        self._choose = w.Dropdown(options=list(self.tasks), description="task",
                                  layout=w.Layout(width="auto", min_width="260px"))
        self._choose.add_class("tc-launch-task")
        self._doc = w.HTML()
        self._form = w.VBox()
        self._form.add_class("tc-launch-form")
        self._button = w.Button(description="Launch", button_style="primary",
                                layout=w.Layout(width="auto"))
        self._button.add_class("tc-launch-button")
        self._result = w.HTML()
        self._result.add_class("tc-launch-result")
        self._choose.observe(lambda change: self._build(), names="value")
        self._button.on_click(lambda _: self.launch())
        empty = w.HTML("<i>no tasks: define a @task function in this notebook, or list modules "
                       "in [tool.taskcache] tasks = [...]</i>")
        super().__init__([self._choose, self._doc, self._form,
                          w.HBox([self._button, self._result], layout=w.Layout(align_items="center"))]
                         if self.tasks else [empty])
        self.add_class("tc-launch")
        self._build()

    def _build(self) -> None:
        task = self.tasks.get(self._choose.value)
        if task is None:
            return
        self._fields = {p.name: _field(p) for p in task.params}
        helps = {p.name: p.help for p in task.params}
        rows = []
        for name, widget in self._fields.items():
            widget.add_class(f"tc-launch-param-{name}")
            hint = w.HTML(f'<span style="color:var(--jp-content-font-color2)">{fmt.esc(helps[name])}</span>')
            rows.append(w.HBox([widget, hint], layout=w.Layout(align_items="center")))
        self._form.children = rows
        first = task.doc.splitlines()[0] if task.doc else ""
        self._doc.value = f"<i>{fmt.esc(first)}</i>" if first else ""
        self._result.value = ""

    def fill(self, **values: Any) -> None:
        """Set fields by name (scripting and tests)."""
        for name, value in values.items():
            self._fields[name].value = value

    def launch(self) -> int | None:
        """Check the form, start the run, and follow it; returns the run id (None when the
        form is wrong: the reason is shown next to the button)."""
        task = self.tasks[self._choose.value]
        params = {p.name: p for p in task.params}
        sent = {name: _value(params[name], widget) for name, widget in self._fields.items()}
        sent = {k: v for k, v in sent.items() if not (v is None and not params[k].required
                                                        and not params[k].optional)}
        try:
            arguments = bind_arguments(task.function, sent)
        except ArgumentError as exc:
            self._result.value = fmt.message_html(str(exc))
            return None
        self._button.disabled = True
        if task.module == "__main__":
            run_id = self._launch_in_thread(task, arguments)
        else:
            launched = self.launcher.launch(task, arguments)
            run_id = launched.run_id
        if run_id is None:
            self._button.disabled = False
            return None
        self._result.value = f"run #{run_id} {fmt.status_badge('running')}"
        threading.Thread(target=self._follow, args=(run_id,), daemon=True).start()
        if self._on_launched is not None:
            self._on_launched(run_id)
        return run_id

    def _launch_in_thread(self, task: DiscoveredTask, arguments: dict[str, Any]) -> int | None:
        """A notebook's own task: called in a background thread of this kernel; the run id
        is the newest run of the task once it exists."""
        catalog = get_runner().catalog
        before = max((r.id for r in catalog.query_runs(task=task.name, limit=1)), default=0)
        errors: list[BaseException] = []

        def body() -> None:
            try:
                task.function(**arguments)
            except BaseException as exc:  # recorded as failed by @task; shown by _follow
                errors.append(exc)

        thread = threading.Thread(target=body, daemon=True, name=f"taskcache-launch-{task.name}")
        thread.start()
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            newest = catalog.query_runs(task=task.name, limit=1)
            if newest and newest[0].id > before:
                return newest[0].id
            if not thread.is_alive():  # a hit: no new run; the run it came from
                hit = task_definition(task.function).lookup(**arguments)
                if hit is not None:
                    return hit.id
                self._result.value = fmt.message_html(
                    f"{type(errors[0]).__name__}: {errors[0]}" if errors else "nothing was recorded")
                return None
            time.sleep(0.05)
        return None

    def _follow(self, run_id: int) -> None:
        catalog = get_runner().catalog
        while True:
            run = catalog.get_run(run_id)
            if run.status not in ("running", "pending"):
                break
            time.sleep(_POLL)
        text = f"run #{run.id} {fmt.status_badge(run.status)}"
        if run.status == "completed":
            result = next((a for a in run.artifacts if a.name == RETURN), None)
            if result is not None:
                text += f" <code>{fmt.esc(result.repr)}</code>"
        elif run.error_type:
            text += f" <b>{fmt.esc(run.error_type.rsplit('.', 1)[-1])}: {fmt.esc(run.error_message or '')}</b>"
        self._result.value = text
        self._button.disabled = False
