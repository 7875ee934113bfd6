"""The notebook's progress bar of a sweep or flow: an ipywidgets bar with done / hits /
failed / running counts and the time left. The lifecycle draws it through
:func:`taskcache.lifecycle.progress.set_progress_bar` (``%load_ext taskcache`` registers it)."""

from __future__ import annotations

from ipywidgets import HTML, HBox, IntProgress, Layout

from taskcache.lifecycle.progress import Counts

__all__ = ["WidgetProgressBar"]


class WidgetProgressBar:
    """Shown when created (``.widget``); ``update``/``close`` as
    :class:`~taskcache.lifecycle.progress.ProgressBar`."""

    def __init__(self, counts: Counts) -> None:
        self._bar = IntProgress(value=0, min=0, max=max(counts.total, 1),
                                layout=Layout(width="40%"))
        self._label = HTML()
        self.widget = HBox([self._bar, self._label], layout=Layout(align_items="center"))
        self.update(counts)
        from IPython.display import display

        display(self.widget)

    def update(self, counts: Counts) -> None:
        self._bar.value = counts.done
        self._bar.bar_style = "danger" if counts.failed else ""
        title = f"<b>{counts.title}</b> " if counts.title else ""
        self._label.value = f"&nbsp;{title}{counts.text()}"

    def close(self, counts: Counts) -> None:
        """Leave the bar on screen with the final counts."""
        self.update(counts)
        self._bar.bar_style = "danger" if counts.failed else "success"
