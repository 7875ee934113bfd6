from __future__ import annotations

from pathlib import Path

import pytest

from taskcache.config import resolve_settings
from taskcache.errors import ConfigError


def test_defaults_put_the_catalog_in_the_cache_folder(tmp_path, monkeypatch):
    monkeypatch.delenv("TASKCACHE_DIR", raising=False)
    s = resolve_settings(start=tmp_path)
    assert s.cache_dir == tmp_path / ".taskcache"
    assert s.db_url == f"sqlite:///{tmp_path / '.taskcache' / 'catalog.db'}"
    assert s.allow_pickle is True


def test_precedence_arguments_over_environment_over_pyproject(tmp_path, monkeypatch):
    monkeypatch.delenv("TASKCACHE_DIR", raising=False)
    (tmp_path / "pyproject.toml").write_text(
        '[tool.taskcache]\ncache_dir = "shared-cache"\nallow_pickle = false\nlease_seconds = 5\n'
    )
    nested = tmp_path / "notebooks" / "deep"
    nested.mkdir(parents=True)
    s = resolve_settings(start=nested)
    assert s.cache_dir == tmp_path / "shared-cache"  # relative to the pyproject's folder
    assert s.allow_pickle is False and s.lease_seconds == 5.0
    monkeypatch.setenv("TASKCACHE_DIR", str(tmp_path / "env"))
    monkeypatch.setenv("TASKCACHE_DB_URL", "sqlite:///" + str(tmp_path / "x.db"))
    s = resolve_settings(start=nested)
    assert s.cache_dir == tmp_path / "env" and s.db_url.endswith("x.db")
    s = resolve_settings(start=nested, cache_dir=tmp_path / "arg", allow_pickle=True)
    assert s.cache_dir == tmp_path / "arg" and s.allow_pickle is True


def test_unknown_or_bad_settings_name_the_problem(tmp_path, monkeypatch):
    (tmp_path / "pyproject.toml").write_text('[tool.taskcache]\ncache_dri = "x"\n')
    with pytest.raises(ConfigError, match="cache_dri"):
        resolve_settings(start=tmp_path)
    with pytest.raises(ConfigError, match="allow_pickle"):
        resolve_settings(start=Path("/"), allow_pickle="perhaps")
