"""pytest-jupyter's fixtures (a real Jupyter server, in-process) for this folder only."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from pytest_jupyter.jupyter_server import *  # noqa: F403  (jp_fetch, jp_serverapp, ...)

from taskcache.lifecycle import runner

TASKS_MODULE = '''
import os
import time
from typing import Literal
from taskcache import task

@task
def scale(n: int, factor: float = 2.0, mode: Literal["up", "down"] = "up", loud: bool = False) -> float:
    """Multiply n by factor.

    Args:
        n: how many
        factor: by how much
    """
    return n * factor if mode == "up" else n / factor

@task
def where(tag: str = "") -> int:
    return os.getpid()

@task
def broken(x: int) -> int:
    raise ValueError(f"bad input {x}")

@task
def slow(seconds: float = 30.0) -> float:
    time.sleep(seconds)
    return seconds
'''


@pytest.fixture
def jp_server_config() -> dict[str, Any]:
    return {"ServerApp": {"jpserver_extensions": {"taskcache": True}}}


@pytest.fixture
def task_modules(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, cache_dir: Path) -> str:
    """A real module of @task functions (and a broken one), configured as the server's
    ``tasks``; the launched processes import it from the same path."""
    folder = tmp_path / "experiments"
    folder.mkdir()
    (folder / "tc_steps.py").write_text(textwrap.dedent(TASKS_MODULE))
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
