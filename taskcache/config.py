"""Settings: one frozen object the core reads; resolved from arguments, environment,
``[tool.taskcache]`` in the nearest pyproject.toml, and defaults (highest first)."""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field, fields, replace
from decimal import Decimal
from pathlib import Path
from typing import Any

from taskcache.errors import ConfigError

DEFAULT_DIR = ".taskcache"
FRAME_FORMATS = ("parquet", "arrow")
#: where ``f.map`` and ``f.submit`` run their misses by default (``executor`` setting)
EXECUTORS = ("threads", "processes", "dask")


@dataclass(frozen=True)
class Settings:
    """Plain settings of the core. ``db_url`` defaults to ``sqlite:///<cache_dir>/catalog.db``."""

    cache_dir: Path
    db_url: str = ""
    allow_pickle: bool = True
    lease_seconds: float = 60.0
    heartbeat_seconds: float = 15.0
    busy_timeout_seconds: float = 30.0
    quiet: bool = False
    #: how DataFrames/Series are stored: "parquet" (portable, compressed) or "arrow" (Arrow
    #: IPC, memory-mapped on load: a hit costs about nothing, files are larger)
    frame_format: str = "parquet"
    #: where ``f.map``/``f.submit`` run misses: "threads", "processes" or "dask"
    executor: str = "threads"
    #: workers of the thread or process pool (None: one per CPU)
    max_workers: int | None = None
    #: bytes of artifacts the cache may hold; after a write that leaves more, the least
    #: recently used runs are removed (lifecycle.eviction.SizeBound). None: no bound
    max_size: int | None = None
    #: modules whose @task functions the Jupyter server extension lists and can launch
    tasks: tuple[str, ...] = ()
    #: where artifacts live when not in ``cache_dir/artifacts``: any fsspec URL
    #: (``s3://bucket/prefix``, ``gs://...``, ``file:///shared/folder``)
    artifacts_url: str = ""
    #: size bound of the local copies of remote artifacts (``cache_dir/remote-copies``)
    artifacts_cache_bytes: int = 5_000_000_000
    #: bytes of the files a run writes that are stored with it (so a hit can put them
    #: back); files past this total are recorded by content hash only
    max_file_output: int = 1 << 30
    extra: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "cache_dir", Path(self.cache_dir).expanduser().absolute())
        if not self.db_url:
            object.__setattr__(self, "db_url", f"sqlite:///{self.cache_dir / 'catalog.db'}")
        if self.lease_seconds <= 0:
            raise ConfigError(f"lease_seconds must be positive, got {self.lease_seconds}")
        if self.max_file_output < 0:
            raise ConfigError(f"max_file_output must be a size of at least 0, got "
                              f"{self.max_file_output}")
        if self.max_size is not None and (isinstance(self.max_size, bool)
                                          or not isinstance(self.max_size, int)
                                          or self.max_size < 0):
            raise ConfigError(f"max_size must be a size such as '20GB' or a number of bytes, "
                              f"got {self.max_size!r}")
        if self.frame_format not in FRAME_FORMATS:
            raise ConfigError(f"frame_format must be one of {', '.join(FRAME_FORMATS)}, got "
                              f"{self.frame_format!r}")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"executor must be one of {', '.join(EXECUTORS)}, got "
                              f"{self.executor!r}")
        if self.max_workers is not None and self.max_workers < 1:
            raise ConfigError(f"max_workers must be at least 1, got {self.max_workers}")

    @property
    def artifacts_dir(self) -> Path:
        """The local artifacts folder (also a ``file://`` artifacts_url's folder)."""
        if self.artifacts_url.startswith("file://"):
            return Path(self.artifacts_url[len("file://"):])
        return self.cache_dir / "artifacts"

    @property
    def remote_artifacts(self) -> bool:
        """Whether artifacts live behind a non-local fsspec URL (S3, GCS, Azure...)."""
        return "://" in self.artifacts_url and not self.artifacts_url.startswith("file://")

    def replace(self, **changes: Any) -> Settings:
        return replace(self, **changes)


_KNOWN = {f.name for f in fields(Settings)} - {"extra"}
_BOOLS = {"allow_pickle", "quiet"}
_FLOATS = {"lease_seconds", "heartbeat_seconds", "busy_timeout_seconds"}
_INTS = {"max_workers"}
_SIZES = {"artifacts_cache_bytes", "max_file_output"}


_UNITS = {"": 1, "b": 1, "k": 10**3, "kb": 10**3, "m": 10**6, "mb": 10**6, "g": 10**9,
          "gb": 10**9, "t": 10**12, "tb": 10**12, "kib": 2**10, "mib": 2**20, "gib": 2**30,
          "tib": 2**40}


def parse_size(text: str) -> int:
    """Bytes in a size such as ``"500MB"``, ``"1.5 GiB"``, ``"200k"`` or ``"1000"``: KB, MB,
    GB, TB are powers of 1000, KiB, MiB, GiB, TiB powers of 1024."""
    match = re.fullmatch(r"\s*(\d+(?:\.\d*)?|\.\d+)\s*([A-Za-z]*)\s*", text)
    unit = _UNITS.get(match[2].lower()) if match else None
    if match is None or unit is None:
        raise ValueError(f"{text!r} is not a size; write e.g. 500MB, 2GB or 1.5GiB")
    return int(Decimal(match[1]) * unit)


def find_pyproject_section(start: Path | None = None) -> tuple[Path | None, dict[str, Any]]:
    """The ``[tool.taskcache]`` table of the nearest pyproject.toml at or above ``start``."""
    here = (start or Path.cwd()).absolute()
    for folder in (here, *here.parents):
        candidate = folder / "pyproject.toml"
        if candidate.is_file():
            try:
                data = tomllib.loads(candidate.read_text(encoding="utf-8"))
            except (OSError, tomllib.TOMLDecodeError) as exc:
                raise ConfigError(f"cannot read {candidate}: {exc}") from exc
            section = data.get("tool", {}).get("taskcache")
            if section is not None:
                if not isinstance(section, dict):
                    raise ConfigError(f"[tool.taskcache] in {candidate} must be a table")
                return candidate, section
            return candidate, {}
    return None, {}


def _coerce(name: str, value: Any, origin: str) -> Any:
    if name not in _KNOWN:
        raise ConfigError(
            f"unknown taskcache setting {name!r} in {origin}; known: {', '.join(sorted(_KNOWN))}"
        )
    if name in _BOOLS:
        if isinstance(value, str):
            low = value.strip().lower()
            if low in {"1", "true", "yes", "on"}:
                return True
            if low in {"0", "false", "no", "off"}:
                return False
            raise ConfigError(f"{name} in {origin} must be true or false, got {value!r}")
        return bool(value)
    if name in _INTS:
        try:
            return int(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} in {origin} must be a whole number, got {value!r}") from exc
    if name == "max_size":
        if value is None or isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(value, str):
            if value.strip().lower() in ("", "none", "off"):
                return None
            try:
                return parse_size(value)
            except ValueError as exc:
                raise ConfigError(f"max_size in {origin}: {exc}") from None
        raise ConfigError(f"max_size in {origin} must be a size such as '20GB', got {value!r}")
    if name == "tasks":
        items = [value] if isinstance(value, str) else value
        if not isinstance(items, list | tuple) or not all(isinstance(m, str) for m in items):
            raise ConfigError(f"tasks in {origin} must be a list of module names, got {value!r}")
        return tuple(items)
    if name in _SIZES:
        try:
            return value if isinstance(value, int) else parse_size(str(value))
        except ValueError as exc:
            raise ConfigError(f"{name} in {origin}: {exc}") from None
    if name in _FLOATS:
        try:
            return float(value)
        except (TypeError, ValueError) as exc:
            raise ConfigError(f"{name} in {origin} must be a number, got {value!r}") from exc
    return value


def resolve_settings(start: Path | None = None, **explicit: Any) -> Settings:
    """Settings from explicit arguments > environment > pyproject.toml > defaults.

    ``None`` in ``explicit`` means "not given".
    """
    values: dict[str, Any] = {"cache_dir": Path(start or Path.cwd()) / DEFAULT_DIR}
    pyproject, section = find_pyproject_section(start)
    for key, value in section.items():
        key = key.replace("-", "_")
        value = _coerce(key, value, str(pyproject))
        if key == "cache_dir":
            value = (pyproject.parent / Path(value).expanduser()) if pyproject else Path(value)
        values[key] = value
    env_dir = os.environ.get("TASKCACHE_DIR")
    if env_dir:
        values["cache_dir"] = Path(env_dir)
    env_url = os.environ.get("TASKCACHE_DB_URL")
    if env_url:
        values["db_url"] = env_url
    env_artifacts = os.environ.get("TASKCACHE_ARTIFACTS_URL")
    if env_artifacts:
        values["artifacts_url"] = env_artifacts
    for key, value in explicit.items():
        if value is not None:
            values[key] = _coerce(key, value, "arguments")
    remote = "://" in values.get("artifacts_url", "") and not values["artifacts_url"].startswith("file://")
    if remote and "allow_pickle" not in values:
        values["allow_pickle"] = False  # a shared bucket: nobody else's pickle is loaded
    return Settings(**values)
