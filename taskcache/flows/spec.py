"""A flow's definition: steps read from YAML or JSON (or given in code), checked before
anything runs.

    tasks:
      - name: features
        function: experiments.steps.features   # an importable @task, or a plain function
        args: {frame: ${load}, n: 3}           # ${step}: that step's result
        retries: 2                             # optional: retries, retry_delay, timeout

Every problem is one FlowError that names the step and the way out: a malformed file, an
unknown function, a reference to a missing step, a cycle (``fit -> features -> fit``),
arguments that do not fit the function's signature.
"""

from __future__ import annotations

import copy
import importlib
import json
import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from taskcache.decorator import TaskDefinition, task
from taskcache.errors import FlowError
from taskcache.lifecycle.sweeps import RetryPolicy

__all__ = ["Step", "load_steps", "parse_overrides", "validate"]

_REFERENCE = re.compile(r"^\$\{\s*([A-Za-z_][\w.-]*)\s*\}$")
_STEP_KEYS = {"name", "function", "args", "retries", "retry_delay", "timeout"}


@dataclass(frozen=True)
class Step:
    """One step: ``function`` is a callable or a dotted import path; in ``args``, a string
    ``"${other}"`` stands for the result of step ``other``."""

    name: str
    function: Callable[..., Any] | str
    args: Mapping[str, Any] = field(default_factory=dict)
    retries: int | None = None
    retry_delay: float | None = None
    timeout: float | None = None

    def references(self) -> dict[str, str]:
        """Argument name -> the step whose result it takes."""
        return {arg: m.group(1) for arg, value in self.args.items()
                if isinstance(value, str) and (m := _REFERENCE.match(value))}

    @property
    def function_name(self) -> str:
        f = self.function
        return f if isinstance(f, str) else f"{f.__module__}.{f.__qualname__}"


_BARE_REFERENCE = re.compile(r"(^|[:\[{,]\s*|-\s+)(\$\{\s*[A-Za-z_][\w.-]*\s*\})(?=\s*(?:[,}\]#]|$))",
                             re.MULTILINE)


def _quote_references(text: str) -> str:
    """Quote a bare ``${step}`` value, so ``args: {frame: ${load}}`` is valid YAML (in a
    flow mapping ``{`` would otherwise open another mapping)."""
    return _BARE_REFERENCE.sub(r'\1"\2"', text)


def _read(path: Path) -> Any:
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise FlowError(f"cannot read flow file {path}: {exc.strerror or exc}") from None
    if path.suffix.lower() == ".json":
        try:
            return json.loads(text)
        except ValueError as exc:
            raise FlowError(f"flow file {path} is not valid JSON: {exc}") from None
    import yaml

    try:
        return yaml.safe_load(_quote_references(text))
    except yaml.YAMLError as exc:  # the parser's message gives line and column
        raise FlowError(f"flow file {path} is not valid YAML: {exc}") from None


def load_steps(source: Any, *, origin: str = "the flow") -> list[Step]:
    """Steps from a file path, a mapping ``{"tasks": [...]}``, or a list of steps or of
    mappings. FlowError if the shape is wrong (the file and step are named)."""
    if isinstance(source, str | Path) and not isinstance(source, Step):
        origin = str(source)
        source = _read(Path(source))
    if isinstance(source, Mapping):
        unknown = set(source) - {"tasks"}
        if unknown or "tasks" not in source:
            raise FlowError(f"{origin}: a flow is a mapping with one key, 'tasks' (a list of "
                            f"steps); found keys: {', '.join(map(str, source)) or 'none'}")
        source = source["tasks"]
    if not isinstance(source, Sequence) or isinstance(source, str) or not source:
        raise FlowError(f"{origin}: 'tasks' must be a non-empty list of steps")
    steps: list[Step] = []
    for index, entry in enumerate(source, 1):
        steps.append(entry if isinstance(entry, Step) else _step(entry, index, origin))
    names = [s.name for s in steps]
    doubles = sorted({n for n in names if names.count(n) > 1})
    if doubles:
        raise FlowError(f"{origin}: step names must be unique; repeated: {', '.join(doubles)}")
    return steps


def _step(entry: Any, index: int, origin: str) -> Step:
    where = f"{origin}: step {index}"
    if not isinstance(entry, Mapping):
        raise FlowError(f"{where} must be a mapping with name, function and args")
    if not isinstance(entry.get("name"), str) or not entry["name"]:
        raise FlowError(f"{where} has no name")
    where = f"{origin}: step {entry['name']!r}"
    unknown = set(entry) - _STEP_KEYS
    if unknown:
        raise FlowError(f"{where} has unknown key(s) {', '.join(sorted(map(str, unknown)))}; "
                        f"a step has {', '.join(sorted(_STEP_KEYS))}")
    function = entry.get("function")
    if not (isinstance(function, str) and function) and not callable(function):
        raise FlowError(f"{where} has no function (a dotted path such as "
                        "'experiments.steps.fit')")
    args = entry.get("args") or {}
    if not isinstance(args, Mapping):
        raise FlowError(f"{where}: args must be a mapping of argument names to values")
    return Step(entry["name"], function, dict(args), entry.get("retries"),
                entry.get("retry_delay"), entry.get("timeout"))


def parse_overrides(assignments: Iterable[str]) -> dict[str, dict[str, Any]]:
    """``["fit.alpha=0.1"]`` -> ``{"fit": {"alpha": 0.1}}`` (values read as YAML scalars:
    numbers, booleans, strings)."""
    import yaml

    out: dict[str, dict[str, Any]] = {}
    for text in assignments:
        target, sep, raw = text.partition("=")
        step, dot, arg = target.partition(".")
        if not (sep and dot and step and arg):
            raise FlowError(f"--set {text!r}: expected STEP.ARG=VALUE, e.g. fit.alpha=0.1")
        out.setdefault(step.strip(), {})[arg.strip()] = yaml.safe_load(raw) if raw else ""
    return out


def apply_overrides(steps: list[Step], overrides: Mapping[str, Mapping[str, Any]]) -> list[Step]:
    """``steps`` with argument values replaced; FlowError for a step that does not exist."""
    names = {s.name for s in steps}
    missing = sorted(set(overrides) - names)
    if missing:
        raise FlowError(f"--set names step {', '.join(missing)}, which the flow does not have; "
                        f"steps: {', '.join(s.name for s in steps)}")
    return [Step(s.name, s.function, {**s.args, **overrides.get(s.name, {})}, s.retries,
                 s.retry_delay, s.timeout) for s in steps]


def resolve_function(step: Step) -> TaskDefinition:
    """The step's task: an importable ``@task`` as it is, a plain function wrapped in one;
    the step's retries/timeout replace the task's own."""
    function = step.function
    if isinstance(function, str):
        module_name, _, attribute = function.rpartition(".")
        if not module_name:
            raise FlowError(f"step {step.name!r}: unknown function {function!r}: give a dotted "
                            "path, module.function")
        try:
            module = importlib.import_module(module_name)
        except ImportError as exc:
            raise FlowError(f"step {step.name!r}: unknown function {function!r}: cannot import "
                            f"{module_name} ({exc})") from None
        try:
            function = getattr(module, attribute)
        except AttributeError:
            raise FlowError(f"step {step.name!r}: unknown function {function!r}: module "
                            f"{module_name} has no {attribute!r}") from None
        if not callable(function):
            raise FlowError(f"step {step.name!r}: {step.function!r} is not a function")
    definition = getattr(function, "__taskcache__", None)
    if definition is None:
        definition = task(function).__taskcache__
    if step.retries is None and step.retry_delay is None and step.timeout is None:
        return definition
    definition = copy.copy(definition)
    if step.retries is not None or step.retry_delay is not None:
        old = definition.retry
        definition.retry = RetryPolicy(
            int(step.retries if step.retries is not None else old.retries),
            float(step.retry_delay if step.retry_delay is not None else old.delay),
            old.backoff, old.retry_on)
    if step.timeout is not None:
        definition.timeout = float(step.timeout)
    return definition


def _cycle(steps: Sequence[Step]) -> list[str] | None:
    """A cycle of references as step names, first name repeated at the end; None if none.
    Edges go from a step to the steps it takes results from."""
    needs = {s.name: list(dict.fromkeys(s.references().values())) for s in steps}
    state: dict[str, int] = {}  # 1 on the current path, 2 done
    path: list[str] = []

    def visit(name: str) -> list[str] | None:
        state[name] = 1
        path.append(name)
        for other in needs.get(name, []):
            if state.get(other) == 1:
                return [*path[path.index(other):], other]
            if other in needs and other not in state:
                found = visit(other)
                if found:
                    return found
        path.pop()
        state[name] = 2
        return None

    for s in steps:
        if s.name not in state:
            found = visit(s.name)
            if found:
                return found
    return None


def validate(steps: Sequence[Step]) -> dict[str, TaskDefinition]:
    """Check the whole flow before it runs; returns each step's task. FlowError for the
    first problem, in this order: unknown function, missing step, cycle, arguments."""
    definitions = {s.name: resolve_function(s) for s in steps}
    names = [s.name for s in steps]
    for s in steps:
        for arg, other in s.references().items():
            if other not in definitions:
                raise FlowError(f"step {s.name!r} takes {arg}=${{{other}}}, but the flow has "
                                f"no step {other!r}; steps: {', '.join(names)}")
    cycle = _cycle(steps)
    if cycle:
        raise FlowError(f"the flow has a cycle: {' -> '.join(cycle)}; a step cannot depend on "
                        "its own result")
    for s in steps:
        signature = definitions[s.name].signature
        try:
            signature.bind(**s.args)
        except TypeError as exc:
            raise FlowError(f"step {s.name!r}: arguments {', '.join(s.args) or '(none)'} do not "
                            f"match {s.function_name}{signature}: {exc}") from None
    return definitions
