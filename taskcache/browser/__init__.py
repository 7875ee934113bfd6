"""The run browser: an ipywidgets panel over the run catalog (``taskcache.browse()``).

``formatting`` and ``lineage`` are pure (no widgets, no database); ``panel`` composes the
table (``_table``), the detail view (``_detail``) and the live poller (``_live``)."""

from __future__ import annotations

from taskcache.browser.panel import RunBrowser, browse

__all__ = ["RunBrowser", "browse"]
