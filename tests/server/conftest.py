"""pytest-jupyter's fixtures (a real Jupyter server, in-process) for this folder only."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (jp_fetch, jp_serverapp, ...)

from taskcache.lifecycle import runner

#: the tasks the server tests launch: a real module, copied into each test's folder
STEPS = Path(__file__).with_name("tc_steps.py")


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"taskcache": True}}}


@pytest.fixture
def task_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> str:
    """A real module of @task functions (and a broken one), configured as the server's
    ``tasks``; the launched processes import it from the same path."""
    folder = tmp_path / "experiments"
    folder.mkdir()
    shutil.copy(STEPS, folder / "tc_steps.py")
    (folder / "tc_broken_steps.py").write_text("import no_such_module_here\n")
    monkeypatch.syspath_prepend(str(folder))
    monkeypatch.setenv("PYTHONPATH", str(folder))
    runner.configure(tasks=("tc_steps", "tc_broken_steps"))
    return "tc_steps"


@pytest.fixture
def api(jp_fetch: Any, task_modules: str) -> Callable[..., Any]:
    """``await api("runs", params=...)`` / ``await api("tasks/x/runs", body={...})`` -> (status, JSON)."""

    async def call(*path: str, body: Any = None, params: dict | None = None, **kw: Any) -> Any:
        from tornado.httpclient import HTTPClientError

        options: dict[str, Any] = {"params": params, **kw}
        if body is not None:
            options.update(method="POST", body=json.dumps(body))
        try:
            response = await jp_fetch("taskcache", "api", *path, **options)
        except HTTPClientError as exc:
            return exc.code, json.loads(exc.response.body or b"{}") if exc.response else {}
        return response.code, json.loads(response.body)

    return call
