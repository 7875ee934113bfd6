"""Artifact store: atomic writes, permissions, checksums, verification, path safety, sweeps."""

from __future__ import annotations

import os
import shutil
import stat
import time
from pathlib import Path

import pytest
import xxhash

from taskcache.errors import (
    ConfigError,
    CorruptArtifactError,
    MissingArtifactError,
    StoreError,
    UnsafePathError,
)
from taskcache.storage.folders import prepare_cache_dir
from taskcache.storage.store import ArtifactStore, StoredFile, sanitize_name


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def writes(data: bytes):
    return lambda tmp: tmp.write_bytes(data)


@pytest.fixture
def store(tmp_path: Path) -> ArtifactStore:
    return ArtifactStore(tmp_path / "cache" / "artifacts")


def temp_files(root: Path) -> list[Path]:
    return [p for p in root.rglob(".tmp-*")]


# ---------------------------------------------------------------- cache dir


def test_prepare_cache_dir(tmp_path: Path) -> None:
    cache = prepare_cache_dir(tmp_path / "a" / ".taskcache")
    assert cache == tmp_path / "a" / ".taskcache" and mode(cache) == 0o700
    ignore = cache / ".gitignore"
    assert "*" in ignore.read_text().splitlines()
    ignore.write_text("*\n# mine\n")
    prepare_cache_dir(cache)  # idempotent, leaves an existing .gitignore alone
    assert ignore.read_text() == "*\n# mine\n"
    assert temp_files(cache) == []


def test_an_existing_cache_dir_of_ours_is_tightened_to_0700(tmp_path: Path) -> None:
    cache = tmp_path / ".taskcache"
    cache.mkdir(mode=0o755)
    os.chmod(cache, 0o755)  # readable by others, writable by nobody else
    assert mode(prepare_cache_dir(cache)) == 0o700


@pytest.mark.parametrize("bits", [0o770, 0o707, 0o777, 0o1777])
def test_a_cache_dir_other_users_can_write_is_refused(tmp_path: Path, bits: int) -> None:
    cache = tmp_path / "shared dir"
    cache.mkdir()
    os.chmod(cache, bits)
    with pytest.raises(ConfigError, match="writable by other users") as caught:
        prepare_cache_dir(cache)
    assert f"chmod 700 '{cache}'" in str(caught.value)
    assert mode(cache) == bits and not (cache / ".gitignore").exists()  # left untouched
    os.chmod(cache, 0o700)  # the fix the message names
    assert prepare_cache_dir(cache) == cache
    os.chmod(cache, bits)
    assert prepare_cache_dir(cache, private=False) == cache  # shared on purpose, pickle off
    assert mode(cache) == bits


def test_a_cache_dir_inside_a_sticky_world_writable_folder_is_fine(tmp_path: Path) -> None:
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    os.chmod(tmp, 0o1777)  # like /tmp: only the .taskcache folder itself is checked
    assert mode(prepare_cache_dir(tmp / ".taskcache")) == 0o700


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="chown needs root")
def test_a_cache_dir_of_another_user_is_refused(tmp_path: Path) -> None:
    cache = tmp_path / "theirs"
    cache.mkdir(mode=0o700)
    os.chown(cache, 65534, 65534)
    with pytest.raises(ConfigError, match=r"belongs to another user \(uid 65534\)"):
        prepare_cache_dir(cache)


def test_the_runner_refuses_a_catalog_file_or_folder_others_can_write(tmp_path: Path) -> None:
    from taskcache.config import Settings
    from taskcache.lifecycle.runner import Runner

    cache = tmp_path / "cache"
    Runner(Settings(cache_dir=cache)).close()
    db = cache / "catalog.db"
    os.chmod(db, 0o662)
    with pytest.raises(ConfigError, match=f"catalog file {db} is writable by other users"
                                          f".*chmod 600 {db}"):
        Runner(Settings(cache_dir=cache))
    os.chmod(db, 0o600)
    Runner(Settings(cache_dir=cache)).close()
    elsewhere = tmp_path / "db" / "here"  # a catalog outside the cache folder: created 0700
    Runner(Settings(cache_dir=cache, db_url=f"sqlite:///{elsewhere}/c.db")).close()
    assert mode(elsewhere) == 0o700 and (elsewhere / "c.db").exists()
    os.chmod(elsewhere, 0o775)
    with pytest.raises(ConfigError, match=f"catalog folder {elsewhere} is writable"):
        Runner(Settings(cache_dir=cache, db_url=f"sqlite:///{elsewhere}/c.db"))
    assert mode(elsewhere) == 0o775  # the user's folder: never chmod-ed by us
    Runner(Settings(cache_dir=cache, db_url=f"sqlite:///{elsewhere}/c.db",
                    allow_pickle=False)).close()


# ---------------------------------------------------------------- writes


def test_write_records_size_checksum_and_permissions(store: ArtifactStore) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)  # crosses the read chunk boundary
    stored = store.write(["run-1", "df"], ".parquet", writes(data))
    assert stored == StoredFile("run-1/df.parquet", len(data),
                                "xxh3_128:" + xxhash.xxh3_128(data).hexdigest())
    path = store.path_of(stored.relpath)
    assert path.read_bytes() == data
    assert mode(path) == 0o400 and mode(path.parent) == 0o700 and mode(store.root) == 0o700
    assert store.verify(stored.relpath, stored.size, stored.checksum) == path
    assert temp_files(store.root) == []


def test_writer_sees_temp_in_target_folder_and_target_appears_only_complete(
        store: ArtifactStore) -> None:
    seen: list[Path] = []

    def writer(tmp: Path) -> None:
        seen.append(tmp)
        assert tmp.parent == store.root / "r"
        assert tmp.name.startswith(".tmp-") and tmp.name.endswith("out.npy")
        with open(tmp, "wb") as f:
            f.write(b"part")
            assert not (store.root / "r" / "out.npy").exists()  # nothing visible mid-write
            f.write(b"-rest")

    stored = store.write(["r", "out"], ".npy", writer)
    assert store.path_of(stored.relpath).read_bytes() == b"part-rest"
    assert not seen[0].exists()


def test_writer_raising_leaves_nothing(store: ArtifactStore) -> None:
    def broken(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise ValueError("codec failed")

    with pytest.raises(ValueError, match="codec failed"):
        store.write(["r", "x"], ".json", broken)
    assert temp_files(store.root) == [] and not (store.root / "r" / "x.json").exists()


def test_oserror_becomes_storeerror_keeping_errno(store: ArtifactStore) -> None:
    def full(tmp: Path) -> None:
        raise OSError(28, "No space left on device")

    with pytest.raises(StoreError) as info:
        store.write(["r", "x"], ".bin", full)
    assert isinstance(info.value, OSError) and info.value.errno == 28
    assert "r/x.bin" in str(info.value) and isinstance(info.value.__cause__, OSError)
    assert temp_files(store.root) == []


def test_overwrite_replaces_atomically(store: ArtifactStore) -> None:
    store.write(["a"], ".bin", writes(b"old"))
    stored = store.write(["a"], ".bin", writes(b"new!"))
    assert store.verify(stored.relpath, 4, stored.checksum).read_bytes() == b"new!"


def test_writer_replacing_the_file_still_gets_0400(store: ArtifactStore) -> None:
    def replacing(tmp: Path) -> None:
        tmp.unlink()
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT, 0o666)
        os.write(fd, b"x")
        os.close(fd)

    stored = store.write(["a"], ".bin", replacing)
    assert mode(store.path_of(stored.relpath)) == 0o400


@pytest.mark.parametrize("suffix", ["/x", "../x", ".a/b", "x", ".\x00", ".pa rquet"])
def test_bad_suffix_refused(store: ArtifactStore, suffix: str) -> None:
    with pytest.raises(UnsafePathError):
        store.write(["a"], suffix, writes(b""))


# ---------------------------------------------------------------- verify


def test_verify_detects_truncation_alteration_deletion(store: ArtifactStore) -> None:
    stored = store.write(["r", "v"], ".bin", writes(b"0123456789"))
    path = store.path_of(stored.relpath)
    path.write_bytes(b"01234")
    with pytest.raises(CorruptArtifactError, match="10 bytes"):
        store.verify(stored.relpath, stored.size, stored.checksum)
    path.write_bytes(b"0123456780")  # same size, different bytes
    with pytest.raises(CorruptArtifactError) as info:
        store.verify(stored.relpath, stored.size, stored.checksum)
    assert info.value.expected == stored.checksum
    path.unlink()
    with pytest.raises(MissingArtifactError):
        store.verify(stored.relpath, stored.size, stored.checksum)


# ---------------------------------------------------------------- path safety


@pytest.mark.parametrize("relpath", [
    "../x", "/etc/passwd", "a/../../b", "a/\x00b", "a\\..\\b", "..", ".", "", "a//b", "C:/x",
    "a/./b",
])
def test_path_traversal_refused(store: ArtifactStore, relpath: str) -> None:
    with pytest.raises(UnsafePathError):
        store.path_of(relpath)
    with pytest.raises(UnsafePathError):
        store.delete(relpath)


def test_planted_symlink_pointing_outside_is_refused(store: ArtifactStore, tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("s")
    (store.root / "run").symlink_to(outside)
    with pytest.raises(UnsafePathError):
        store.path_of("run/secret")
    with pytest.raises(UnsafePathError):
        store.verify("run/secret", 1, "xxh3_128:0")
    with pytest.raises(UnsafePathError):
        store.write(["run", "out"], ".bin", writes(b"x"))
    assert sorted(p.name for p in outside.iterdir()) == ["secret"]  # nothing written there
    (store.root / "link").symlink_to(outside / "secret")
    with pytest.raises(UnsafePathError):
        store.path_of("link")


def test_writes_go_on_when_a_folder_written_before_is_removed_or_replaced(
        store: ArtifactStore, tmp_path: Path) -> None:
    """The store remembers the folders it created (a write costs one mkdir): one removed
    meanwhile is created again, and one replaced by a symlink after the store removed it is
    checked again and refused."""
    first = store.write(["task", "1", "out"], ".bin", writes(b"one"))
    store.delete(first.relpath)  # removes the folders it leaves empty: task/1, task
    assert not (store.root / "task").exists()
    second = store.write(["task", "2", "out"], ".bin", writes(b"two"))
    assert (store.root / second.relpath).read_bytes() == b"two"
    shutil.rmtree(store.root / "task")  # behind the store's back
    third = store.write(["task", "3", "out"], ".bin", writes(b"three"))
    assert (store.root / third.relpath).read_bytes() == b"three"
    store.delete(third.relpath)
    outside = tmp_path / "outside"
    outside.mkdir()
    (store.root / "task").symlink_to(outside)  # planted where a remembered folder was
    with pytest.raises(UnsafePathError):
        store.write(["task", "4", "out"], ".bin", writes(b"four"))
    assert list(outside.iterdir()) == []


HOSTILE = ["../../etc", "a/b", "a\\b", "CON", "con", "Nul.txt", "LPT1", "x" * 500, "x" * 501,
           "é", "e\u0301x", "日本語", "", ".", "..", "...", ".hidden", "a\x00b", "  ", "DF", "df",
           "a b", "a_b", "a__b", "\ud800", "-", "COM1.parquet"]


def test_sanitize_name_yields_safe_distinct_components() -> None:
    out = [sanitize_name(n) for n in HOSTILE]
    for name, clean in zip(HOSTILE, out, strict=True):
        assert clean and len(clean) <= 80, name
        assert all(c.isascii() and (c.isalnum() or c in "._-") for c in clean), clean
        assert not clean.startswith(".") and clean not in (".", "..")
        assert clean.split(".")[0].upper() not in {"CON", "NUL", "LPT1", "COM1"}
    assert len({c.lower() for c in out}) == len(set(HOSTILE))  # distinct even ignoring case
    assert sanitize_name("df") == "df" and sanitize_name("my_task-2.v1") == "my_task-2.v1"
    assert sanitize_name("x" * 500) != sanitize_name("x" * 501)


def test_hostile_names_stay_under_root(store: ArtifactStore) -> None:
    for i, name in enumerate(HOSTILE):
        stored = store.write([name, name], ".bin", writes(bytes([i])))
        path = store.path_of(stored.relpath)
        assert path.resolve().is_relative_to(store.root.resolve())
        assert path.parent.parent == store.root
    assert len(list(store.iter_files())) == len(HOSTILE)


# ---------------------------------------------------------------- delete, sweep, iter


def test_delete_removes_file_and_empty_parents(store: ArtifactStore) -> None:
    a = store.write(["t", "r1", "a"], ".bin", writes(b"a"))
    b = store.write(["t", "r2", "b"], ".bin", writes(b"b"))
    store.delete(a.relpath)
    assert not (store.root / "t" / "r1").exists() and (store.root / "t" / "r2").exists()
    store.delete(a.relpath)  # missing is fine
    store.delete(b.relpath)
    assert store.root.exists() and list(store.root.iterdir()) == []


def test_sweep_temp_removes_only_old_temp_files(store: ArtifactStore) -> None:
    store.write(["r", "keep"], ".bin", writes(b"k"))
    old = store.root / "r" / ".tmp-1-abc-old.bin"
    fresh = store.root / "r" / ".tmp-2-def-fresh.bin"
    old.write_bytes(b"x")
    fresh.write_bytes(b"y")
    past = time.time() - 7200
    os.utime(old, (past, past))
    assert store.sweep_temp(older_than_seconds=3600) == [old]
    assert fresh.exists() and not old.exists() and (store.root / "r" / "keep.bin").exists()
    assert store.sweep_temp(older_than_seconds=0) == [fresh]


def test_iter_files_lists_artifacts_only(store: ArtifactStore) -> None:
    store.write(["b", "y"], ".npy", writes(b"1"))
    store.write(["a"], ".json", writes(b"2"))
    (store.root / "b" / ".tmp-9-x-z.npy").write_bytes(b"")
    (store.root / ".gitignore").write_text("*\n")
    assert list(store.iter_files()) == ["a.json", "b/y.npy"]


# ---------------------------------------------------------------- remembered verification


def test_verified_file_is_not_reread_until_it_changes(store: ArtifactStore, monkeypatch) -> None:
    import taskcache.storage.store as store_module
    import taskcache.storage.verified as verified_module

    monkeypatch.setattr(verified_module, "SETTLED_NS", 0)  # every file counts as settled
    reads = []
    real = store_module.checksum_file
    monkeypatch.setattr(store_module, "checksum_file", lambda p: reads.append(p) or real(p))
    stored = store.write(["run", "big"], ".bin", writes(b"a" * 4096))
    reads.clear()
    for _ in range(3):
        store.verify(stored.relpath, stored.size, stored.checksum)
    assert len(reads) == 1  # checksummed once, then known unchanged
    store.verify(stored.relpath, stored.size, stored.checksum, reread=True)
    assert len(reads) == 2  # taskcache verify reads every byte regardless
    path = store.path_of(stored.relpath)
    before = path.stat()
    with open(path, "r+b") as f:  # same size, same mtime afterwards: only ctime tells
        f.write(b"b")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(CorruptArtifactError):
        store.verify(stored.relpath, stored.size, stored.checksum)
    path.write_bytes(b"a" * 4096)  # put back: verifies again (by reading it)
    store.verify(stored.relpath, stored.size, stored.checksum)
    path.unlink()
    with pytest.raises(MissingArtifactError):
        store.verify(stored.relpath, stored.size, stored.checksum)


def test_fresh_files_are_always_reread(store: ArtifactStore, monkeypatch) -> None:
    import taskcache.storage.store as store_module

    reads = []
    real = store_module.checksum_file
    monkeypatch.setattr(store_module, "checksum_file", lambda p: reads.append(p) or real(p))
    stored = store.write(["run", "new"], ".bin", writes(b"a" * 4096))
    reads.clear()
    for _ in range(3):  # written just now: a change within the same clock tick could hide
        store.verify(stored.relpath, stored.size, stored.checksum)
    assert len(reads) == 3


def test_read_verified_returns_the_checked_bytes(store: ArtifactStore) -> None:
    stored = store.write(["run", "small"], ".bin", writes(b"payload"))
    assert store.read_verified(stored.relpath, stored.size, stored.checksum) == b"payload"
    path = store.path_of(stored.relpath)
    path.write_bytes(b"paYload")
    with pytest.raises(CorruptArtifactError):
        store.read_verified(stored.relpath, stored.size, stored.checksum)
    path.write_bytes(b"pay")
    with pytest.raises(CorruptArtifactError):
        store.read_verified(stored.relpath, stored.size, stored.checksum)
    path.unlink()
    with pytest.raises(MissingArtifactError):
        store.read_verified(stored.relpath, stored.size, stored.checksum)


def test_small_artifact_bytes_are_kept_until_the_file_changes(store: ArtifactStore,
                                                             monkeypatch) -> None:
    import taskcache.storage.verified as verified_module

    monkeypatch.setattr(verified_module, "SETTLED_NS", 0)  # every file counts as settled
    stored = store.write(["run", "small"], ".bin", writes(b"payload"))
    where = (stored.relpath, stored.size, stored.checksum)
    assert store.read_verified(*where) == b"payload"
    opened = []
    real_open = os.open
    monkeypatch.setattr(os, "open", lambda *a, **k: opened.append(a) or real_open(*a, **k))
    assert store.read_verified(*where) == b"payload"
    assert opened == []  # kept: one lstat, no read
    path = store.path_of(stored.relpath)
    before = path.stat()
    with open(path, "r+b") as f:  # same size, same mtime afterwards: only ctime tells
        f.write(b"P")
    os.utime(path, ns=(before.st_atime_ns, before.st_mtime_ns))
    with pytest.raises(CorruptArtifactError):
        store.read_verified(*where)
    assert opened


@pytest.mark.parametrize("size", [0, 1, 256 * 1024 - 1, 256 * 1024, 3 * 1024 * 1024 + 7])
def test_checksum_of_small_and_memory_mapped_files(store: ArtifactStore, size: int) -> None:
    data = os.urandom(size)
    stored = store.write(["run", f"f{size}"], ".bin", writes(data))
    assert stored.size == size
    assert stored.checksum == f"xxh3_128:{xxhash.xxh3_128_hexdigest(data)}"
    store.verify(stored.relpath, stored.size, stored.checksum, reread=True)
    if size:
        path = store.path_of(stored.relpath)
        with open(path, "r+b") as f:  # one flipped byte at the end is caught
            f.seek(size - 1)
            f.write(bytes([data[-1] ^ 1]))
        with pytest.raises(CorruptArtifactError):
            store.verify(stored.relpath, stored.size, stored.checksum, reread=True)


def test_map_verified_checks_the_mapping_and_keeps_writes_private(store: ArtifactStore) -> None:
    data = os.urandom(2 * 1024 * 1024 + 3)
    stored = store.write(["run", "mapped"], ".bin", writes(data))
    mapped = store.map_verified(stored.relpath, stored.size, stored.checksum)
    assert bytes(mapped[:16]) == data[:16] and len(mapped) == len(data)
    mapped[0] = data[0] ^ 1  # copy-on-write: the file never sees it
    path = store.path_of(stored.relpath)
    assert path.read_bytes() == data
    flipped = bytearray(data)
    flipped[-1] ^= 1
    path.write_bytes(bytes(flipped))
    with pytest.raises(CorruptArtifactError):
        store.map_verified(stored.relpath, stored.size, stored.checksum)
    path.write_bytes(data[:-1])
    with pytest.raises(CorruptArtifactError):
        store.map_verified(stored.relpath, stored.size, stored.checksum)
    path.unlink()
    with pytest.raises(MissingArtifactError):
        store.map_verified(stored.relpath, stored.size, stored.checksum)
