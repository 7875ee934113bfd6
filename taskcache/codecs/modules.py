"""The "module" codec: a module bound as a cell output, stored by its import name."""

from __future__ import annotations

import sys
import types
from importlib import import_module
from pathlib import Path
from typing import Any


class ModuleCodec:
    """A module bound as a cell output (``import numpy as np``), stored by import name.

    Decoding imports the module named in the file, i.e. runs its code: with pickle off the
    policy (``pickling.check_import``) first refuses a module this process has not
    imported itself."""

    name = "module"
    hash_exact = True  # decoded values hash as the originals (tests/codecs checks it)
    suffix = ".json"
    unsafe = False
    imports = True  # decoding may import code: see pickling.check_import

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

    def module_name(self, data: bytes) -> str:
        """The import name a file of this codec holds (ValueError if it holds none)."""
        import json

        try:
            name = json.loads(data.decode("utf-8"))["module"]
        except (ValueError, KeyError, TypeError) as exc:
            raise ValueError(f"not a module artifact: {exc}") from None
        if not isinstance(name, str) or not name:
            raise ValueError(f"not a module name: {name!r}")
        return name

    def decode_bytes(self, data: bytes) -> Any:
        return import_module(self.module_name(data))
