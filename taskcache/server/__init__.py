"""The Jupyter server extension: a runs page and a task launcher at ``/taskcache``, and a JSON
API under ``/taskcache/api/``, behind Jupyter's own login (token or password, XSRF on POST).

Enabled by ``jupyter-config/jupyter_server_config.d/taskcache.json``, which the wheel
installs into ``etc/jupyter/jupyter_server_config.d/``; ``taskcache serve`` starts a Jupyter
server with it for people who do not run JupyterLab.
"""

from __future__ import annotations

from typing import Any

__all__ = ["_jupyter_server_extension_points", "_load_jupyter_server_extension"]


def _jupyter_server_extension_points() -> list[dict[str, str]]:
    return [{"module": "taskcache.server"}]


def _load_jupyter_server_extension(serverapp: Any) -> None:
    """Register the page, the static files and the API handlers."""
    from taskcache.server.handlers import setup_handlers

    setup_handlers(serverapp.web_app)
    serverapp.log.info("taskcache: runs page and task launcher at %staskcache",
                       serverapp.web_app.settings.get("base_url", "/"))
