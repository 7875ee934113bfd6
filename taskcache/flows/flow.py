"""``Flow``: steps run as cached task calls, each as soon as the results it takes are ready,
independent ones in parallel, so a re-run recomputes only the steps whose code or inputs
changed and those downstream of them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Mapping
from concurrent.futures import CancelledError, Future, wait
from pathlib import Path
from typing import Any

from taskcache.flows.picture import StepState, flow_svg
from taskcache.flows.spec import Step, apply_overrides, load_steps, validate
from taskcache.lifecycle.progress import SweepProgress, open_progress

__all__ = ["Flow", "FlowResult"]


class FlowResult(Mapping[str, Any]):
    """Each step's result by step name; ``states`` says how each step ended (hit or not)."""

    def __init__(self, values: dict[str, Any], states: dict[str, StepState]) -> None:
        self._values = values
        self.states = states

    def __getitem__(self, name: str) -> Any:
        return self._values[name]

    def __iter__(self) -> Iterator[str]:
        return iter(self._values)

    def __len__(self) -> int:
        return len(self._values)

    @property
    def hits(self) -> list[str]:
        return [name for name, state in self.states.items() if state.hit]

    def summary(self) -> str:
        """One line a step: name, status, hit or time."""
        width = max(map(len, self.states), default=4)
        return "\n".join(f"{name:{width}}  {state.sublabel()}" for name, state in self.states.items())

    def __repr__(self) -> str:
        return f"<FlowResult {', '.join(f'{n}: {s.sublabel()}' for n, s in self.states.items())}>"


class _StepWatcher:
    """Told by ``submit`` of a hit, a start and an end: keeps the step's state, the flow's
    counts and the live picture current."""

    def __init__(self, name: str, flow_run: _FlowRun) -> None:
        self._name = name
        self._run = flow_run
        self._started: float | None = None

    @property
    def _state(self) -> StepState:
        return self._run.states[self._name]

    def hit(self) -> None:
        self._state.status, self._state.hit = "completed", True
        self._run.changed(lambda bar: bar.hit())

    def started(self) -> None:
        if self._started is not None:  # a retry
            self._state.attempt += 1
        self._started = time.monotonic()
        self._state.status = "running"
        self._run.changed(lambda bar: bar.started())

    def finished(self, *, failed: bool) -> None:
        self._state.status = "failed" if failed else "completed"
        if self._started is not None:
            self._state.seconds = time.monotonic() - self._started
        self._run.changed(lambda bar: bar.finished(failed=failed))

    def retrying(self) -> None:
        self._run.changed(lambda bar: bar.retrying())


class _FlowRun:
    def __init__(self, steps: list[Step], bar: SweepProgress, live: Any) -> None:
        self.steps = steps
        self.states = {s.name: StepState() for s in steps}
        self._bar = bar
        self._live = live
        self._lock = threading.Lock()

    def changed(self, count: Any) -> None:
        with self._lock:
            count(self._bar)
            if self._live is not None:
                self._live.update(self._svg())

    def _svg(self) -> Any:
        from IPython.display import SVG

        return SVG(flow_svg(self.steps, self.states))


def _in_notebook() -> bool:
    try:
        from IPython import get_ipython
    except ImportError:
        return False
    shell = get_ipython()
    return shell is not None and getattr(shell, "kernel", None) is not None


class Flow:
    """A DAG of steps. Build it from a YAML/JSON file (:meth:`load`) or in code::

        Flow([{"name": "load", "function": load, "args": {"path": "raw.csv"}},
              {"name": "fit", "function": "experiments.steps.fit",
               "args": {"frame": "${load}", "alpha": 0.5}, "retries": 2}])

    Everything is checked here, before anything runs (FlowError): see
    :mod:`taskcache.flows.spec`."""

    def __init__(self, tasks: Any, *, origin: str = "Flow(...)") -> None:
        self.steps = load_steps(tasks, origin=origin)
        self.definitions = validate(self.steps)

    @classmethod
    def load(cls, path: str | Path) -> Flow:
        """The flow in a ``.yaml``/``.yml`` or ``.json`` file."""
        return cls(Path(path), origin=str(path))

    def with_args(self, overrides: Mapping[str, Mapping[str, Any]]) -> Flow:
        """This flow with some arguments replaced: ``{"fit": {"alpha": 0.1}}``."""
        return Flow(apply_overrides(self.steps, overrides))

    def order(self) -> list[Step]:
        """The steps so that each comes after the steps it takes results from (file order
        where free)."""
        done: set[str] = set()
        ordered: list[Step] = []
        pending = list(self.steps)
        while pending:
            ready = [s for s in pending if set(s.references().values()) <= done]
            for s in ready:
                ordered.append(s)
                done.add(s.name)
            pending = [s for s in pending if s.name not in done]
        return ordered

    def run(self, *, executor: Any = None, max_workers: int | None = None,
            progress: bool = True, show: bool | None = None) -> FlowResult:
        """Run every step (hits from the cache; misses on ``executor``, independent steps at
        once); returns each step's result. ``show``: draw the flow with live status (default:
        in a notebook). The first failing step's error is raised once every step has ended,
        noting the step; Ctrl-C cancels the steps not finished."""
        live = None
        if show if show is not None else _in_notebook():
            from IPython.display import SVG, display

            live = display(SVG(self.svg()), display_id=True)
        bar = open_progress(len(self.steps), title="flow", show=progress)
        flow_run = _FlowRun(self.steps, bar, live)
        futures: dict[str, Future] = {}
        try:
            for step in self.order():
                refs = step.references()
                args = {k: futures[refs[k]] if k in refs else v for k, v in step.args.items()}
                futures[step.name] = self.definitions[step.name].submit(
                    (), args, executor=executor, max_workers=max_workers,
                    progress=_StepWatcher(step.name, flow_run))  # type: ignore[arg-type]
            wait(futures.values())
        except KeyboardInterrupt:
            for future in futures.values():
                future.cancel()
            raise
        finally:
            bar.close()
        for step in self.steps:
            future = futures[step.name]
            if future.cancelled():
                flow_run.states[step.name].status = "cancelled"
        for step in self.order():
            error = None if futures[step.name].cancelled() else futures[step.name].exception()
            if error is not None:
                error.add_note(f"(in flow step {step.name!r})")
                raise error
        if any(f.cancelled() for f in futures.values()):
            raise CancelledError()
        return FlowResult({name: f.result() for name, f in futures.items()}, flow_run.states)

    def svg(self, states: Mapping[str, StepState] | None = None) -> str:
        """The flow as one SVG (all steps pending unless ``states`` says otherwise)."""
        return flow_svg(self.steps, states)

    def _repr_svg_(self) -> str:
        return self.svg()

    def __repr__(self) -> str:
        return f"<Flow of {len(self.steps)} steps: {', '.join(s.name for s in self.order())}>"
