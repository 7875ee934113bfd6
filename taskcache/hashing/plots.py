"""matplotlib figures hash by what they show, not by their object graph.

A figure's pickle state is a large web of shared, self-updating objects (stale flags, cached
transforms) that hashes slowly and differently from one call to the next. Its rendered pixels
are what the user sees and are deterministic with the Agg renderer, so a figure hashes by
its size, dpi and raw RGBA rendering, and an artist (Axes, Line2D, ...) by its figure plus its
position among the figure's artists.
"""

from __future__ import annotations

import io
from typing import Any

from taskcache.hashing.core import Unhashable


def figure_content(fig: Any) -> tuple:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="rgba", dpi=fig.dpi)  # raw pixels: no metadata, no timestamps
    return ("matplotlib.figure", tuple(fig.get_size_inches().tolist()), float(fig.dpi), buffer.getvalue())


def artist_content(artist: Any) -> tuple:
    kind = f"{type(artist).__module__}.{type(artist).__qualname__}"
    fig = artist.get_figure()
    if fig is None:
        raise Unhashable(artist, "it belongs to no figure, so it has no content to hash")
    position = next((i for i, a in enumerate(fig.findobj()) if a is artist), -1)
    return ("matplotlib.artist", kind, position, figure_content(fig))
