"""The extension's REST API through a real Jupyter server (pytest-jupyter): auth, filters,
discovery, launch, validation, cancel."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest
from tornado.httpclient import HTTPClientError

pytestmark = pytest.mark.timeout(120)


async def wait_for(api: Any, run_id: int, done: tuple[str, ...] = ("completed", "failed", "cancelled"),
                   timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        code, run = await api("runs", str(run_id))
        assert code == 200, run
        if run["status"] in done or time.monotonic() > deadline:
            return run
        await asyncio.sleep(0.2)


async def test_unauthenticated_requests_are_refused(jp_fetch: Any, task_modules: str) -> None:
    for path in (("runs",), ("tasks",), ("events",)):
        with pytest.raises(HTTPClientError) as info:
            await jp_fetch("taskcache", "api", *path, headers={"Authorization": ""})
        assert info.value.code == 403
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("taskcache", "api", "tasks", "tc_steps.scale", "runs", method="POST",
                       body='{"arguments": {"n": 1}}', headers={"Authorization": ""})
    assert info.value.code == 403


async def test_tasks_lists_parameters_and_import_errors(api: Any) -> None:
    code, found = await api("tasks")
    assert code == 200
    tasks = {t["name"]: t for t in found["tasks"]}
    assert set(tasks) == {f"tc_steps.{name}" for name in ("scale", "where", "broken", "slow")}
    params = {p["name"]: p for p in tasks["tc_steps.scale"]["params"]}
    assert params["n"] == {**params["n"], "kind": "int", "required": True, "help": "how many"}
    assert params["mode"]["kind"] == "choice" and params["mode"]["choices"] == ["up", "down"]
    assert params["loud"]["kind"] == "bool" and params["factor"]["default"] == 2.0
    (error,) = found["errors"]
    assert error["module"] == "tc_broken_steps" and "no_such_module_here" in error["error"]


async def test_launch_runs_in_another_process_then_hits(api: Any) -> None:
    code, launched = await api("tasks", "tc_steps.scale", "runs", body={"arguments": {"n": 3, "factor": 1.5}})
    assert code == 201 and launched["status"] == "running" and not launched["hit"]
    run = await wait_for(api, launched["run_id"])
    assert run["status"] == "completed", run
    (result,) = [a for a in run["artifacts"] if a["name"] == "return"]
    assert result["repr"] == "4.5"
    code, again = await api("tasks", "tc_steps.scale", "runs", body={"arguments": {"n": 3, "factor": 1.5}})
    assert code == 201 and again == {"run_id": run["id"], "status": "completed", "hit": True}


@pytest.mark.parametrize(("arguments", "param"), [
    ({"factor": 2}, "n"),                       # missing
    ({"n": "three"}, "n"),                      # wrong type
    ({"n": 1, "mode": "sideways"}, "mode"),     # not one of the Literal's values
    ({"n": 1, "loud": "maybe"}, "loud"),
    ({"n": 1, "speed": 3}, "speed"),            # no such parameter
])
async def test_bad_arguments_get_400_naming_the_parameter(api: Any, arguments: dict, param: str) -> None:
    code, body = await api("tasks", "tc_steps.scale", "runs", body={"arguments": arguments})
    assert code == 400 and body["param"] == param and param in body["error"]


async def test_user_code_never_runs_in_the_server_process(api: Any) -> None:
    _, launched = await api("tasks", "tc_steps.where", "runs", body={"arguments": {}})
    run = await wait_for(api, launched["run_id"])
    (result,) = [a for a in run["artifacts"] if a["name"] == "return"]
    assert int(result["repr"]) != os.getpid()


async def test_unknown_task_is_404(api: Any) -> None:
    code, body = await api("tasks", "nope", "runs", body={"arguments": {}})
    assert code == 404 and "nope" in body["error"]


async def test_failure_is_recorded_with_its_traceback(api: Any) -> None:
    code, launched = await api("tasks", "tc_steps.broken", "runs", body={"arguments": {"x": 7}})
    assert code == 201
    run = await wait_for(api, launched["run_id"])
    assert run["status"] == "failed"
    assert run["error_type"].endswith("ValueError") and run["error_message"] == "bad input 7"
    assert "raise ValueError" in run["traceback"]


async def test_cancel_stops_the_process(api: Any) -> None:
    code, launched = await api("tasks", "tc_steps.slow", "runs", body={"arguments": {"seconds": 60}})
    assert code == 201
    await wait_for(api, launched["run_id"], done=("running",), timeout=5)
    code, run = await api("runs", str(launched["run_id"]), "cancel", body={})
    assert code == 200 and run["status"] == "cancelled"
    code, body = await api("runs", str(launched["run_id"]), "cancel", body={})
    assert code == 409 and "cancelled" in body["error"]


async def test_runs_filters_paging_and_events(api: Any) -> None:
    _, marker0 = await api("events")
    ids = []
    for n in range(3):
        _, launched = await api("tasks", "tc_steps.scale", "runs", body={"arguments": {"n": n}})
        ids.append(launched["run_id"])
    for run_id in ids:
        await wait_for(api, run_id)
    _, failed = await api("tasks", "tc_steps.broken", "runs", body={"arguments": {"x": 1}})
    await wait_for(api, failed["run_id"])
    _, marker1 = await api("events")
    assert marker1["marker"] != marker0["marker"]
    code, page = await api("runs", params={"task": "tc_steps.scale", "page_size": "2"})
    assert code == 200 and page["total"] == 3 and [r["id"] for r in page["runs"]] == ids[::-1][:2]
    _, page2 = await api("runs", params={"task": "tc_steps.scale", "page_size": "2", "page": "1"})
    assert [r["id"] for r in page2["runs"]] == ids[:1]
    _, failed_only = await api("runs", params={"status": "failed"})
    assert [r["id"] for r in failed_only["runs"]] == [failed["run_id"]]
    _, sorted_runs = await api("runs", params={"sort": "id", "desc": "0", "task": "tc_steps.scale"})
    assert [r["id"] for r in sorted_runs["runs"]] == ids
    for params, bad in (({"status": "bogus"}, "status"), ({"sort": "password"}, "sort"),
                        ({"page_size": "0"}, "page_size"), ({"page": "x"}, "page")):
        code, body = await api("runs", params=params)
        assert code == 400 and body["param"] == bad


async def test_run_detail_has_lineage_and_404(api: Any) -> None:
    _, launched = await api("tasks", "tc_steps.scale", "runs", body={"arguments": {"n": 2}})
    run = await wait_for(api, launched["run_id"])
    code, detail = await api("runs", str(run["id"]))
    assert code == 200 and detail["source"].lstrip().startswith("@task")
    assert detail["inputs"][0]["name"] == "n" and "<svg" in detail["lineage_svg"]
    code, body = await api("runs", "999999")
    assert code == 404 and "999999" in body["error"]


async def test_page_is_served_to_logged_in_users_only(jp_fetch: Any, task_modules: str) -> None:
    response = await jp_fetch("taskcache")
    html = response.body.decode()
    assert "taskcache/static/app.js" in html and "{{" not in html
    with pytest.raises(HTTPClientError) as info:
        await jp_fetch("taskcache", headers={"Authorization": ""}, follow_redirects=False)
    assert info.value.code in (302, 403)
