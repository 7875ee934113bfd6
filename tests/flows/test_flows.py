"""Flows from real YAML/JSON files over real modules: validation, parallel branches, caching
per step, the DAG picture and ``taskcache flow run|show``."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest

import taskcache as tc
from taskcache.cli import main
from taskcache.errors import FlowError
from tests.helpers import clean_env

STEPS = """
    import os, time
    import taskcache as tc

    LOG = os.environ.get("STEPS_LOG", "steps.log")

    def _count(name):
        with open(LOG, "a") as f:
            f.write(name + "\\n")

    @tc.task
    def load(n: int) -> list:
        _count("load")
        return list(range(n))

    @tc.task
    def features(frame: list, power: int = 2) -> list:
        _count("features")
        return [x ** power for x in frame]

    @tc.task
    def fit(frame: list, alpha: float = 0.1) -> float:
        _count("fit")
        return sum(frame) * alpha

    def plain_total(a: list, b: list) -> int:   # not a @task: the flow wraps it
        _count("total")
        return sum(a) + sum(b)

    @tc.task
    def branch(seconds: float, label: str) -> str:
        time.sleep(seconds)
        return label
"""

FLOW = """
tasks:
  - name: load
    function: flowsteps.load
    args: {n: 4}
  - name: features
    function: flowsteps.features
    args: {frame: ${load}}
  - name: fit
    function: flowsteps.fit
    args: {frame: ${features}, alpha: 0.5}
    retries: 2
    timeout: 600
"""


@pytest.fixture
def steps(make_module: Any, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Any:
    monkeypatch.setenv("STEPS_LOG", str(tmp_path / "steps.log"))
    return make_module("flowsteps", STEPS)


def computed(tmp_path: Path) -> list[str]:
    log = tmp_path / "steps.log"
    return log.read_text().split() if log.exists() else []


def write(tmp_path: Path, text: str, name: str = "flow.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def test_a_yaml_flow_runs_then_reruns_only_what_changed(steps: Any, tmp_path: Path) -> None:
    flow = tc.Flow.load(write(tmp_path, FLOW))
    result = flow.run(progress=False)
    assert result["fit"] == (0 + 1 + 4 + 9) * 0.5
    assert computed(tmp_path) == ["load", "features", "fit"]

    again = flow.run(progress=False)
    assert again.hits == ["load", "features", "fit"] and computed(tmp_path) == ["load", "features", "fit"]

    changed = flow.with_args({"fit": {"alpha": 1.0}}).run(progress=False)
    assert changed["fit"] == 14.0
    assert changed.hits == ["load", "features"]
    assert computed(tmp_path)[3:] == ["fit"]
    fit_run = tc.runs(task="flowsteps.fit").index[0]
    assert [r.task for r in tc.run(int(fit_run)).upstream()] == ["flowsteps.features"]  # lineage


def test_two_independent_one_second_branches_run_at_once(steps: Any, tmp_path: Path) -> None:
    flow = tc.Flow({"tasks": [
        {"name": "left", "function": "flowsteps.branch", "args": {"seconds": 1.0, "label": "l"}},
        {"name": "right", "function": steps.branch, "args": {"seconds": 1.0, "label": "r"}},
    ]})
    started = time.monotonic()
    result = flow.run(progress=False)
    elapsed = time.monotonic() - started
    assert dict(result) == {"left": "l", "right": "r"}
    assert elapsed < 1.9, elapsed  # a busy machine adds setup time, never a second branch
    left, right = (tc.run(int(i)) for i in tc.runs(task="flowsteps.branch").index)
    assert left.started_at < right.finished_at and right.started_at < left.finished_at


def test_a_plain_function_is_wrapped_and_json_works(steps: Any, tmp_path: Path) -> None:
    path = write(tmp_path, json.dumps({"tasks": [
        {"name": "a", "function": "flowsteps.load", "args": {"n": 3}},
        {"name": "b", "function": "flowsteps.load", "args": {"n": 2}},
        {"name": "total", "function": "flowsteps.plain_total", "args": {"a": "${a}", "b": "${b}"}},
    ]}), "flow.json")
    assert tc.Flow.load(path).run(progress=False)["total"] == 4
    assert tc.Flow.load(path).run(progress=False).hits == ["a", "b", "total"]
    assert computed(tmp_path).count("total") == 1


@pytest.mark.parametrize(("tasks", "message"), [
    ([{"name": "fit", "function": "flowsteps.fitt", "args": {}}],
     "step 'fit': unknown function 'flowsteps.fitt': module flowsteps has no 'fitt'"),
    ([{"name": "fit", "function": "nosuchpackage.fit", "args": {}}],
     "step 'fit': unknown function 'nosuchpackage.fit': cannot import nosuchpackage"),
    ([{"name": "features", "function": "flowsteps.features", "args": {"frame": "${fit}"}},
      {"name": "fit", "function": "flowsteps.fit", "args": {"frame": "${features}"}}],
     "the flow has a cycle: features -> fit -> features"),
    ([{"name": "fit", "function": "flowsteps.fit", "args": {"frame": "${features}"}},
      {"name": "features", "function": "flowsteps.features", "args": {"frame": "${fit}"}}],
     "the flow has a cycle: fit -> features -> fit"),
    ([{"name": "fit", "function": "flowsteps.fit", "args": {"frame": "${load}"}}],
     r"step 'fit' takes frame=\$\{load\}, but the flow has no step 'load'; steps: fit"),
    ([{"name": "fit", "function": "flowsteps.fit", "args": {"frame": [1], "alph": 0.1}}],
     r"step 'fit': arguments frame, alph do not match flowsteps.fit\(frame: list, "
     r"alpha: float = 0.1\) -> float: got an unexpected keyword argument 'alph'"),
    ([{"name": "fit", "function": "flowsteps.fit", "args": {"alpha": 0.1}}],
     "step 'fit': .*missing a required argument: 'frame'"),
    ([{"name": "a", "function": "flowsteps.load", "args": {"n": 1}},
      {"name": "a", "function": "flowsteps.load", "args": {"n": 2}}],
     "step names must be unique; repeated: a"),
    ([{"name": "a", "function": "flowsteps.load", "arguments": {"n": 1}}],
     "step 'a' has unknown key\\(s\\) arguments"),
])
def test_every_validation_error_is_one_clear_message_before_anything_runs(
        steps: Any, tmp_path: Path, tasks: list, message: str) -> None:
    with pytest.raises(FlowError, match=message):
        tc.Flow({"tasks": tasks})
    assert computed(tmp_path) == []


def test_files_that_are_not_flows(tmp_path: Path) -> None:
    with pytest.raises(FlowError, match="is not valid YAML"):
        tc.Flow.load(write(tmp_path, "tasks: [unclosed"))
    with pytest.raises(FlowError, match="cannot read flow file"):
        tc.Flow.load(tmp_path / "missing.yaml")
    with pytest.raises(FlowError, match="one key, 'tasks'"):
        tc.Flow.load(write(tmp_path, "steps: []"))


def test_a_failing_step_names_itself_and_downstream_steps_do_not_run(steps: Any, tmp_path: Path) -> None:
    flow = tc.Flow({"tasks": [
        {"name": "load", "function": "flowsteps.load", "args": {"n": "four"}},
        {"name": "fit", "function": "flowsteps.fit", "args": {"frame": "${load}"}},
    ]})
    with pytest.raises(TypeError) as caught:
        flow.run(progress=False)
    assert "(in flow step 'load')" in caught.value.__notes__
    assert tc.runs(task="flowsteps.fit").empty


def test_the_picture_colours_steps_by_status_and_marks_hits(steps: Any, tmp_path: Path) -> None:
    flow = tc.Flow.load(write(tmp_path, FLOW))
    before = flow.svg()
    assert before.startswith("<svg") and before.count("tc-lineage-node") == 3
    assert before.count('class="tc-lineage-edge"') == 2 and ">frame<" in before
    assert before.count(">pending<") == 3
    result = flow.run(progress=False, show=False)
    after = flow.svg(result.states)
    assert after.count("#d3f9d8") == 3  # the completed fill, as in the run browser
    assert "hit (from cache)" in flow.svg(flow.run(progress=False).states)


def test_the_live_picture_in_a_notebook_is_updated_as_steps_finish(steps: Any, tmp_path: Path,
                                                                 ip: Any) -> None:
    ip.user_ns["flow_path"] = str(write(tmp_path, FLOW))
    ip.run_cell("import taskcache as tc; result = tc.Flow.load(flow_path).run(progress=False, show=True)")
    svgs = [o for o in ip.display_pub.outputs if "image/svg+xml" in o["data"]]
    assert len(svgs) >= 4  # first drawn all pending, then updated as the steps move
    assert svgs[0]["data"]["image/svg+xml"].count(">pending<") == 3
    assert "completed" in svgs[-1]["data"]["image/svg+xml"]
    assert ip.user_ns["result"]["fit"] == 7.0


def test_cli_flow_show_and_run(steps: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str],
                               monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path, FLOW)
    monkeypatch.chdir(tmp_path)
    assert main(["flow", "show", str(path), "-o", str(tmp_path / "flow.svg")]) == 0
    assert (tmp_path / "flow.svg").read_text().startswith("<svg")
    assert main(["flow", "run", str(path), "--set", "fit.alpha=2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "fit       completed" in out
    assert tc.run(int(tc.runs(task="flowsteps.fit").index[0])).outputs["return"] == 28.0
    assert main(["flow", "run", str(path), "--set", "fitt.alpha=2"]) == 2
    assert "--set names step fitt, which the flow does not have" in capsys.readouterr().err
    bad = write(tmp_path, FLOW.replace("${features}", "${fit}"), "bad.yaml")
    assert main(["flow", "show", str(bad)]) == 2
    assert "cycle: fit -> fit" in capsys.readouterr().err


def test_cli_flow_run_in_a_fresh_process_imports_the_steps_from_the_working_folder(
        tmp_path: Path) -> None:
    (tmp_path / "flowsteps.py").write_text(textwrap.dedent(STEPS))
    path = write(tmp_path, FLOW)
    env = clean_env(STEPS_LOG=str(tmp_path / "steps.log"))
    command = [sys.executable, "-m", "taskcache.cli", "--cache-dir", str(tmp_path / "c"),
               "flow", "run", str(path), "--executor", "processes", "--max-workers", "2"]
    first = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                           timeout=120)
    assert first.returncode == 0, first.stderr
    second = subprocess.run(command, cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=120)
    assert second.stdout.count("hit (from cache)") == 3
    assert computed(tmp_path) == ["load", "features", "fit"]


def test_taskcache_flow_in_the_line_magic(steps: Any, tmp_path: Path, ip: Any) -> None:
    from IPython.core.error import UsageError

    path = write(tmp_path, FLOW)
    ip.run_line_magic("taskcache", f"flow run {path} --no-progress --set fit.alpha=1")
    assert tc.run(int(tc.runs(task="flowsteps.fit").index[0])).outputs["return"] == 14.0
    with pytest.raises(UsageError, match="--set names step nope"):
        ip.run_line_magic("taskcache", f"flow run {path} --set nope.alpha=1")
