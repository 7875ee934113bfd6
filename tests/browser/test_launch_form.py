"""The run browser's Launch form: built from type hints, checked, launched in a real shell
(a notebook's own task in a thread, a module's task in a process)."""

from __future__ import annotations

import time
from typing import Any

import pytest

from taskcache.browser import RunBrowser
from taskcache.lifecycle.runner import get_runner


def _wait(form: Any, status: str, timeout: float = 60) -> str:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if status in form._result.value and not form._button.disabled:
            return form._result.value
        time.sleep(0.05)
    raise AssertionError(f"no {status!r} in {form._result.value!r}")


def test_launch_a_notebook_task(ip: Any) -> None:
    ip.run_cell(
        "from typing import Literal\n"
        "import taskcache as tc\n"
        "@tc.task\n"
        "def grow(n: int, rate: float = 1.5, mode: Literal['up', 'down'] = 'up', loud: bool = False) -> float:\n"
        "    '''Grow n.\n\n    Args:\n        n: the start\n    '''\n"
        "    if n < 0:\n"
        "        raise ValueError('n must be >= 0')\n"
        "    return n * rate if mode == 'up' else n / rate\n", store_history=False)
    browser = RunBrowser(shell=ip, live=False)
    form = browser.launch_form
    assert list(form.tasks) == ["grow"]
    assert set(form._fields) == {"n", "rate", "mode", "loud"}
    form.fill(n=4, rate=2.0, mode="down")
    run_id = form.launch()
    assert run_id is not None
    assert "completed" in _wait(form, "completed") and "2.0" in form._result.value
    assert get_runner().catalog.get_run(run_id).status == "completed"
    again = form.launch()
    assert again == run_id  # a hit: the same run, nothing computed
    form.fill(n=-1)
    failed = form.launch()
    assert "ValueError" in _wait(form, "failed") and "n must be" in form._result.value
    assert get_runner().catalog.get_run(failed).status == "failed"
    browser.close()


def test_wrong_values_are_named_next_to_the_button(ip: Any) -> None:
    ip.run_cell("import taskcache as tc\n@tc.task\ndef f(items: list[int]) -> int:\n    return sum(items)\n",
                store_history=False)
    form = RunBrowser(shell=ip, live=False).launch_form
    form.fill(items="[1, 'x']")
    assert form.launch() is None
    assert "parameter &#x27;items&#x27;" in form._result.value or "parameter 'items'" in form._result.value
    form.fill(items="[1, 2, 3]")
    assert form.launch() is not None
    assert "6" in _wait(form, "completed")


@pytest.mark.timeout(120)
def test_launch_a_module_task_in_a_process(ip: Any, make_module: Any, monkeypatch: Any) -> None:
    module = make_module("tc_launch_steps", """
        import os
        from taskcache import task

        @task
        def pid_times(k: int = 2) -> int:
            return os.getpid() * k
        """)
    monkeypatch.setenv("PYTHONPATH", str(__import__("pathlib").Path(module.__file__).parent))
    from taskcache.lifecycle.runner import configure

    configure(tasks=("tc_launch_steps",))
    form = RunBrowser(shell=ip, live=False).launch_form
    assert form.tasks["tc_launch_steps.pid_times"].module == "tc_launch_steps"
    form._choose.value = "tc_launch_steps.pid_times"
    form.fill(k=1)
    form.launch()
    text = _wait(form, "completed")
    import os
    assert f"<code>{os.getpid()}</code>" not in text  # ran in a process of its own
