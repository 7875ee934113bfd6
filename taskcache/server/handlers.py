"""Tornado handlers of the extension. Every one is authenticated and authorized by Jupyter
server's machinery (``@web.authenticated`` + ``@authorized`` on the ``taskcache``
resource); an unauthenticated API request gets 403, a bad argument 400 naming the parameter.
Catalog work runs in a worker thread and user code in launched processes, never in the event
loop."""

from __future__ import annotations

import json
from dataclasses import asdict
from datetime import date, datetime
from pathlib import Path
from typing import Any

from jupyter_server.auth.decorator import authorized
from jupyter_server.base.handlers import APIHandler, JupyterHandler
from jupyter_server.utils import url_path_join
from tornado import web
from tornado.ioloop import IOLoop

from taskcache.browser.lineage import layout_graph, lineage_graph, render_svg
from taskcache.errors import RunNotFoundError, TaskcacheError
from taskcache.lifecycle.runner import current_settings, get_runner
from taskcache.records import OUTPUT_LABELS, STATUSES, RunRecord
from taskcache.tasks.discovery import Discovery, discover
from taskcache.tasks.launcher import Launcher
from taskcache.tasks.params import ArgumentError, bind_arguments

STATIC = Path(__file__).with_name("static")
RESOURCE = "taskcache"
SORTS = ("id", "task", "status", "created_at", "started_at", "duration", "hit_count")
MAX_PAGE = 500


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, tuple | list):
        return [_jsonable(v) for v in value]
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)


def run_json(run: RunRecord, *, full: bool = False) -> dict[str, Any]:
    """A run as JSON; ``full`` adds code, inputs, outputs, error and environment."""
    row = {k: _jsonable(getattr(run, k)) for k in (
        "id", "task", "kind", "status", "created_at", "started_at", "finished_at", "duration",
        "hit_count", "tags", "error_type", "error_message", "host", "pid", "parent_run_id",
        "invalid_reason")}
    row["outputs"] = [a.name for a in run.artifacts if a.name not in OUTPUT_LABELS]
    if full:
        row.update(
            source=run.source, traceback=run.traceback, env=_jsonable(run.env),
            fingerprint=run.fingerprint, user_version=run.user_version,
            inputs=[_jsonable(asdict(i)) for i in run.inputs],
            artifacts=[_jsonable(asdict(a)) for a in run.artifacts],
        )
    return row


class _Base(APIHandler):
    auth_resource = RESOURCE

    @property
    def launcher(self) -> Launcher:
        return self.settings["taskcache_launcher"]

    def discovery(self) -> Discovery:
        cached = self.settings.get("taskcache_discovery")
        if cached is None:
            cached = discover(current_settings().tasks)
            self.settings["taskcache_discovery"] = cached
        return cached

    def bad(self, message: str, param: str | None = None) -> None:
        self.set_status(400)
        self.finish(json.dumps({"error": message, "param": param}))

    def write_error(self, status_code: int, **kwargs: Any) -> None:
        exc = kwargs.get("exc_info", (None, None))[1]
        message = getattr(exc, "log_message", None) or (str(exc) if exc else self._reason)
        self.set_header("Content-Type", "application/json")
        self.finish(json.dumps({"error": message}))

    async def in_thread(self, fn: Any, *args: Any) -> Any:
        try:
            return await IOLoop.current().run_in_executor(None, fn, *args)
        except RunNotFoundError as exc:
            raise web.HTTPError(404, str(exc)) from None
        except TaskcacheError as exc:
            raise web.HTTPError(503, f"the catalog cannot be used: {exc}") from None


class RunsHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """``?task=&status=&tag=&text=&sort=id&desc=1&page=0&page_size=25``"""
        arg = self.get_query_argument
        status = arg("status", None) or None
        if status is not None and status not in STATUSES:
            return self.bad(f"status must be one of {', '.join(STATUSES)}", "status")
        sort = arg("sort", "id")
        if sort not in SORTS:
            return self.bad(f"sort must be one of {', '.join(SORTS)}", "sort")
        try:
            page, size = int(arg("page", "0")), int(arg("page_size", "25"))
        except ValueError:
            return self.bad("page and page_size must be whole numbers", "page")
        if page < 0 or not 1 <= size <= MAX_PAGE:
            return self.bad(f"page must be >= 0 and page_size between 1 and {MAX_PAGE}", "page_size")
        filters = {"task": arg("task", None) or None, "status": status,
                   "tag": arg("tag", None) or None, "text": arg("text", None) or None}
        descending = arg("desc", "1") not in ("0", "false")

        def query() -> dict[str, Any]:
            catalog = get_runner().catalog
            records = catalog.query_runs(**filters, sort=sort, descending=descending,
                                         limit=size, offset=page * size)
            return {"total": catalog.count_runs(**filters), "page": page, "page_size": size,
                    "runs": [run_json(r) for r in records], "tasks": catalog.task_names()}

        self.finish(json.dumps(await self.in_thread(query)))


class RunHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self, run_id: str) -> None:
        def detail() -> dict[str, Any]:
            catalog = get_runner().catalog
            run = catalog.get_run(int(run_id))
            body = run_json(run, full=True)
            body["upstream"] = [run_json(r) for r in catalog.upstream(run.id)]
            body["downstream"] = [run_json(r) for r in catalog.downstream(run.id)]
            nodes, edges = lineage_graph(run, catalog.upstream, catalog.downstream)
            body["lineage_svg"] = render_svg(layout_graph(nodes, edges))
            return body

        self.finish(json.dumps(await self.in_thread(detail)))


class CancelHandler(_Base):
    @web.authenticated
    @authorized
    async def post(self, run_id: str) -> None:
        try:
            run = await self.in_thread(self.launcher.cancel, int(run_id))
        except LookupError as exc:
            self.set_status(409)
            return self.finish(json.dumps({"error": str(exc)}))
        self.finish(json.dumps(run_json(run)))


class TasksHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        if self.get_query_argument("refresh", "0") == "1":
            self.settings.pop("taskcache_discovery", None)
        found = await self.in_thread(self.discovery)
        self.finish(json.dumps(found.to_json()))


class LaunchHandler(_Base):
    @web.authenticated
    @authorized
    async def post(self, name: str) -> None:
        task = (await self.in_thread(self.discovery)).tasks.get(name)
        if task is None:
            raise web.HTTPError(404, f"no task named {name!r}; see GET /taskcache/api/tasks")
        try:
            body = json.loads(self.request.body or b"{}")
        except ValueError as exc:
            return self.bad(f"the body is not JSON: {exc}")
        arguments = body.get("arguments", {}) if isinstance(body, dict) else body
        try:
            bound = bind_arguments(task.function, arguments)
        except ArgumentError as exc:
            return self.bad(str(exc), exc.param)
        launched = await self.in_thread(self.launcher.launch, task, bound)
        self.set_status(201)
        self.finish(json.dumps({"run_id": launched.run_id, "status": launched.status,
                                "hit": launched.hit}))


class EventsHandler(_Base):
    @web.authenticated
    @authorized
    async def get(self) -> None:
        """A marker that changes whenever a run is added or changes state: poll it."""
        marker = await self.in_thread(lambda: get_runner().catalog.change_marker())
        self.finish(json.dumps({"marker": list(marker)}))


class PageHandler(JupyterHandler):
    auth_resource = RESOURCE

    @web.authenticated
    @authorized
    def get(self) -> None:
        page = (STATIC / "index.html").read_text(encoding="utf-8")
        base = self.settings.get("base_url", "/")
        self.finish(page.replace("{{base_url}}", base).replace("{{xsrf}}", self.xsrf_token.decode()))


def setup_handlers(web_app: Any) -> None:
    """Add the extension's routes to a Jupyter server's tornado application."""
    web_app.settings.setdefault("taskcache_launcher", Launcher())
    base = web_app.settings.get("base_url", "/")
    api = url_path_join(base, "taskcache", "api")
    web_app.add_handlers(".*$", [
        (url_path_join(base, "taskcache") + "/?", PageHandler),
        (url_path_join(base, "taskcache", "static", "(.*)"), web.StaticFileHandler,
         {"path": str(STATIC)}),
        (url_path_join(api, "runs") + "/?", RunsHandler),
        (url_path_join(api, "runs", r"(\d+)") + "/?", RunHandler),
        (url_path_join(api, "runs", r"(\d+)", "cancel") + "/?", CancelHandler),
        (url_path_join(api, "tasks") + "/?", TasksHandler),
        (url_path_join(api, "tasks", r"([^/]+)", "runs") + "/?", LaunchHandler),
        (url_path_join(api, "events") + "/?", EventsHandler),
    ])
