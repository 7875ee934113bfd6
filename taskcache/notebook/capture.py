"""Record what a cell prints and displays while still showing it live; replay it later.

Recorded items use the notebook output shapes::

    {"output_type": "stream", "name": "stdout", "text": "..."}
    {"output_type": "display_data", "data": {mime: value}, "metadata": {...}}

Figures still open when the cell ends are shown by matplotlib's inline backend *after* the
cell's result (``Out[n]``), when the cell has finished; they are recorded with
``"after_cell": True`` and shown at that moment too, on a miss and on a hit.
"""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any


class _Tee:
    """A text stream that writes through to ``stream`` and records what it wrote."""

    def __init__(self, stream: Any, name: str, items: list[dict[str, Any]]) -> None:
        self._stream = stream
        self._name = name
        self._items = items

    def write(self, text: str) -> int:
        if text:
            last = self._items[-1] if self._items else None
            if last and last["output_type"] == "stream" and last["name"] == self._name:
                last["text"] += text
            else:
                self._items.append({"output_type": "stream", "name": self._name, "text": text})
        return self._stream.write(text)

    def writelines(self, lines: Any) -> None:
        for line in lines:
            self.write(line)

    def __getattr__(self, attr: str) -> Any:  # flush, isatty, encoding, fileno, ...
        return getattr(self._stream, attr)


def _flush_inline_figures() -> None:
    """Show pending matplotlib inline figures now, inside the capture, instead of after the
    cell (the inline backend would otherwise display them once the magic has returned)."""
    backend_inline = sys.modules.get("matplotlib_inline.backend_inline")
    pyplot = sys.modules.get("matplotlib.pyplot")
    if backend_inline is None or pyplot is None:
        return
    if "inline" not in str(pyplot.get_backend()).lower():
        return
    backend_inline.flush_figures()


@contextmanager
def capture_outputs(shell: Any) -> Iterator[list[dict[str, Any]]]:
    """Tee stdout/stderr and record rich display calls made through the shell."""
    items: list[dict[str, Any]] = []
    old_out, old_err = sys.stdout, sys.stderr
    pub = shell.display_pub
    had_own_publish = "publish" in vars(pub)
    original = pub.publish

    ending = False  # the figures left open are being drawn: shown after the result

    def publish(data: dict, metadata: dict | None = None, *args: Any, **kwargs: Any) -> Any:
        item = {"output_type": "display_data", "data": dict(data), "metadata": dict(metadata or {})}
        items.append(item)
        if ending:
            item["after_cell"] = True
            return None
        return original(data, metadata, *args, **kwargs)

    sys.stdout = _Tee(old_out, "stdout", items)
    sys.stderr = _Tee(old_err, "stderr", items)
    pub.publish = publish
    try:
        yield items
        ending = True
        _flush_inline_figures()
        show_after_cell(shell, [item for item in items if item.get("after_cell")])
    finally:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except (AttributeError, ValueError, OSError):
                pass
        sys.stdout, sys.stderr = old_out, old_err
        if had_own_publish:
            pub.publish = original
        else:
            del pub.publish


def show_after_cell(shell: Any, items: list[dict[str, Any]]) -> None:
    """Show ``items`` once the running cell has finished and shown its result, as the
    inline backend shows the figures a cell left open (at once outside a cell run)."""
    if not items:
        return
    if getattr(shell.displayhook, "exec_result", None) is None:
        _show(shell, items)
        return

    def once(*_: Any) -> None:
        shell.events.unregister("post_execute", once)
        _show(shell, items)

    shell.events.register("post_execute", once)


def replay_outputs(shell: Any, items: list[dict[str, Any]]) -> None:
    """Show recorded items again, in their order; figures the cell left open after its
    result."""
    _show(shell, [item for item in items if not item.get("after_cell")])
    show_after_cell(shell, [item for item in items if item.get("after_cell")])


def _show(shell: Any, items: list[dict[str, Any]]) -> None:
    for item in items:
        if item.get("output_type") == "stream":
            stream = sys.stderr if item.get("name") == "stderr" else sys.stdout
            stream.write(item.get("text", ""))
            stream.flush()
        elif item.get("output_type") == "display_data":
            sys.stdout.flush()
            shell.display_pub.publish(data=item["data"], metadata=item.get("metadata") or {})
