"""The "module" codec: a module bound as a cell output, stored by its import name."""

from __future__ import annotations

import sys
import types
from importlib import import_module
from pathlib import Path
from typing import Any


class ModuleCodec:
    """A module bound as a cell output (``import numpy as np``), stored by import name."""

    name = "module"
    hash_exact = True  # decoded values hash as the originals (tests/codecs checks it)
    suffix = ".json"
    unsafe = False

    def can_encode(self, value: Any) -> bool:
        name = getattr(value, "__name__", None)
        return (
            type(value) is types.ModuleType
            and isinstance(name, str)
            and name != "__main__"
            and sys.modules.get(name) is value
        )

    def encode(self, value: Any, path: Path) -> None:
        import json

        Path(path).write_text(json.dumps({"module": value.__name__}), encoding="utf-8")

    def decode(self, path: Path) -> Any:

        return self.decode_bytes(Path(path).read_bytes())

    def decode_bytes(self, data: bytes) -> Any:
        import json

        return import_module(json.loads(data.decode("utf-8"))["module"])
