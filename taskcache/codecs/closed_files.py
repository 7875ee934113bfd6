"""The "closed-file" codec: a file object that was closed (``f`` after ``with open(path) as
f:``), which pickle cannot store, kept as all it still shows and rebuilt on decode.

A closed file has no position, no buffer and no descriptor left: every read or write raises,
and what remains is its name, mode, encoding and errors, the kinds of newline it read, its
buffering and flush settings and the attributes set on it (``fileio.closed_file_state``).
Decoding opens a stand-in of the same kind the same way (``os.devnull`` for writing, a pipe
holding one line per newline kind for reading), reads it so it has seen the same newlines,
puts the name and attributes back and closes it; ``can_encode`` rebuilds the file and
accepts it only when the copy shows exactly the same state. The file on disk is never opened.
Modes that read and write (``+``) and exclusive creation (``x``) are not rebuilt.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from taskcache.codecs import tagged_json
from taskcache.fileio import closed_file_state, file_layers


def _rebuild(state: dict[str, Any]) -> Any:
    """A closed file object showing ``state`` (ValueError when it cannot be made)."""
    mode, layers = state["mode"], state["layers"]
    if not isinstance(mode, str) or mode[:1] not in "rwa" or "+" in mode or "x" in mode:
        raise ValueError(f"a file opened with mode {mode!r} is not rebuilt")
    if not isinstance(state["name"], str) or not state["closefd"]:
        raise ValueError("a file opened from a descriptor is not rebuilt")
    text = layers[0] == "TextIOWrapper"
    buffering = 0 if len(layers) == 1 else 1 if state["line_buffering"] else -1
    options = ({"encoding": state["encoding"], "errors": state["errors"], "newline": None}
               if text else {})
    newlines = state["newlines"]
    kinds = (newlines,) if isinstance(newlines, str) else tuple(newlines or ())
    if mode.startswith("r"):
        sample = "".join("x" + kind for kind in kinds).encode(state["encoding"] or "ascii")
        read_end, write_end = os.pipe()
        try:
            os.write(write_end, sample)  # a few bytes: the pipe's buffer holds them
        finally:
            os.close(write_end)
        file = open(read_end, mode, buffering, **options)  # noqa: SIM115 -- closed below
        if sample:
            file.read()  # the decoder sees the same newline kinds
    else:
        file = open(os.devnull, mode, buffering, **options)  # noqa: SIM115 -- closed below
    if text:
        file.reconfigure(write_through=state["write_through"])
        file._CHUNK_SIZE = state["chunk_size"]
    rebuilt = file_layers(file)
    file.close()
    for layer, attributes in zip(rebuilt, state["attributes"], strict=True):
        vars(layer).update(attributes)  # the name (the raw layer's), open()'s mode, the user's
    return file


class ClosedFileCodec:
    """A closed file object as JSON: the state it shows, rebuilt on decode."""

    name = "closed-file"
    suffix = ".json"
    unsafe = False
    hash_exact = True  # the rebuilt file shows (so hashes) the same state: can_encode checks

    def can_encode(self, value: Any) -> bool:
        state = closed_file_state(value)
        if state is None or not tagged_json.is_exact_json(state):
            return False
        try:
            return closed_file_state(_rebuild(state)) == state
        except (OSError, ValueError, LookupError, TypeError):  # an odd mode or encoding: not me
            return False

    def encode(self, value: Any, path: Path) -> None:
        state = closed_file_state(value)
        if state is None:
            raise ValueError("only a closed file object made by open() is stored")
        Path(path).write_text(tagged_json.dumps(state), encoding="utf-8")

    def decode(self, path: Path) -> Any:
        return self.decode_bytes(Path(path).read_bytes())

    def decode_bytes(self, data: bytes) -> Any:
        return _rebuild(tagged_json.loads(data.decode("utf-8")))
