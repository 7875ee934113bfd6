"""Issue 13, faults and bad input round two: each fault as a careless or hostile user meets
it, with real files, real SQLite, real processes (and a real tmpfs where mounting one is
allowed). The user's code always runs and its result stands; what taskcache could not do is
one CacheWarning naming the file and the fix, never a traceback from taskcache's internals."""

from __future__ import annotations

import contextlib
import os
import re
import sqlite3
import subprocess
import sys
import traceback
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from helpers import write_lock

import taskcache as tc
from taskcache.errors import CacheWarning, ConfigError
from taskcache.lifecycle.runner import get_runner


def cache_warnings(caught: list[warnings.WarningMessage]) -> list[str]:
    return [str(w.message) for w in caught if issubclass(w.category, CacheWarning)]


def assert_no_internals(text: str) -> None:
    for internal in ("sqlalchemy", "OperationalError", "DatabaseError", "CatalogUnavailableError",
                     "During handling", "taskcache/", "UnsafePathError", "RunNotFoundError"):
        assert internal not in text, text




# -- item 9: the user's traceback, exactly as without taskcache --------------------------------

def test_a_cells_own_error_while_the_catalog_is_locked_is_not_chained_to_ours(ip, cache_dir, capfd):
    tc.configure(busy_timeout_seconds=0.2)
    get_runner()
    ip.run_cell("x = 1\nraise ValueError('mine')")
    plain = capfd.readouterr().out
    with write_lock(cache_dir / "catalog.db"), pytest.warns(CacheWarning):
        assert not ip.run_cell("%%task locked\nx = 1\nraise ValueError('mine')").success
    out, err = capfd.readouterr()
    out, plain = (re.sub(r"\x1b\[[0-9;]*m", "", text) for text in (out, plain))  # colours
    assert_no_internals(out + err)
    assert out.count("Traceback") == plain.count("Traceback") == 1
    assert out.strip().splitlines()[-1] == plain.strip().splitlines()[-1]
    assert "ValueError: mine" in out.strip().splitlines()[-1]


def test_a_functions_own_error_while_the_catalog_is_locked_has_no_context(cache_dir):
    tc.configure(busy_timeout_seconds=0.2)

    @tc.task
    def broken(x):
        raise ValueError(f"mine {x}")

    get_runner()
    with write_lock(cache_dir / "catalog.db"), pytest.warns(CacheWarning):
        with pytest.raises(ValueError, match="mine 1") as raised:
            broken(1)
    assert raised.value.__context__ is None and raised.value.__cause__ is None
    shown = "".join(traceback.format_exception(raised.value))
    assert "During handling" not in shown and "CatalogUnavailableError" not in shown


def test_an_async_functions_own_error_while_the_catalog_is_locked_has_no_context(cache_dir):
    import asyncio

    tc.configure(busy_timeout_seconds=0.2)

    @tc.task
    async def broken(x):
        raise ValueError(f"mine {x}")

    get_runner()
    with write_lock(cache_dir / "catalog.db"), pytest.warns(CacheWarning):
        with pytest.raises(ValueError, match="mine 2") as raised:
            asyncio.run(broken(2))
    assert raised.value.__context__ is None


# -- item 5: a run deleted (from another process) while it runs --------------------------------

DELETE_RUNNING = (
    "from taskcache.api import delete_runs\n"
    "from taskcache.lifecycle.runner import get_runner\n"
    "runner = get_runner()\n"
    "delete_runs([r.id for r in runner.catalog.query_runs(status='running')], runner=runner)\n"
)


def test_a_cell_whose_run_is_deleted_while_it_runs_keeps_its_result(ip, cache_dir, capfd):
    ip.user_ns["DELETER"] = DELETE_RUNNING
    cell = ("%%task doomed\nimport subprocess, sys\n"
            "subprocess.run([sys.executable, '-c', DELETER], check=True)\ny = 5\nprint('y is', y)")
    with pytest.warns(CacheWarning) as caught:
        assert ip.run_cell(cell).success
    (text,) = cache_warnings(caught)
    assert "was deleted from the catalog while it ran" in text and "not cached" in text
    assert ip.user_ns["y"] == 5
    out, err = capfd.readouterr()
    assert "y is 5" in out
    assert_no_internals(out + err)
    assert tc.runs(task="doomed").empty
    assert list(get_runner().store.iter_files()) == []  # its files went with it


def test_a_function_whose_run_is_deleted_while_it_runs_returns_its_value(cache_dir):
    @tc.task
    def deleted_meanwhile(x):
        subprocess.run([sys.executable, "-c", DELETE_RUNNING], check=True)
        return x + 1

    with pytest.warns(CacheWarning, match="was deleted from the catalog while it ran"):
        assert deleted_meanwhile(1) == 2
    assert tc.runs().empty


# -- item 3: an artifact replaced by a symlink ---------------------------------------------------

NUMBERS = """
import taskcache as tc
CALLS = []

@tc.task
def numbers(n):
    CALLS.append(n)
    return list(range(n))
"""


@pytest.mark.parametrize("what", ["file", "folder"])
def test_an_artifact_replaced_by_a_symlink_is_recomputed(what, tmp_path, make_module):
    mod = make_module(f"m_symlinked_{what}", NUMBERS)
    numbers, calls = mod.numbers, mod.CALLS
    assert numbers(5) == [0, 1, 2, 3, 4]
    (artifact,) = tc.run(1).record.artifacts
    path = get_runner().store.root / artifact.relpath
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    if what == "file":
        (outside / "planted").write_bytes(path.read_bytes())  # same size, same bytes
        path.unlink()
        path.symlink_to(outside / "planted")
    else:
        folder = path.parent
        (outside / path.name).write_bytes(path.read_bytes())
        path.unlink()
        folder.rmdir()
        folder.symlink_to(outside)
    get_runner().store.forget_verified()
    runner_module_reset()  # a new process: nothing remembered
    with pytest.warns(CacheWarning, match="outside"):
        assert numbers(5) == [0, 1, 2, 3, 4]
    assert calls == [5, 5]
    assert numbers(5) == [0, 1, 2, 3, 4] and calls == [5, 5]  # cached again
    report = tc.gc()
    assert report.runs == [1]
    assert sorted(p.name for p in outside.iterdir()) == sorted(
        ["planted"] if what == "file" else [path.name])  # nothing outside touched


def runner_module_reset() -> None:
    from taskcache.lifecycle import runner

    runner.configure()  # drops the default runner: the next call opens everything afresh


def test_verify_reports_a_planted_symlink(tmp_path, cache_dir):
    @tc.task
    def numbers(n):
        return list(range(n))

    numbers(3)
    (artifact,) = tc.run(1).record.artifacts
    path = get_runner().store.root / artifact.relpath
    (tmp_path / "planted").write_bytes(path.read_bytes())
    path.unlink()
    path.symlink_to(tmp_path / "planted")
    done = subprocess.run([sys.executable, "-m", "taskcache.cli", "verify"], capture_output=True,
                          text=True, env={**os.environ, "TASKCACHE_DIR": str(cache_dir)})
    assert done.returncode == 1 and "outside the store" in done.stdout


# -- item 8: with pickle off, a catalog writer cannot make a hit import anything -----------------

EVIL = """
from pathlib import Path
Path(__file__).with_name("imported.marker").write_text("the module ran")
"""


def _rewrite_artifact(db: Path, store_root: Path, relpath: str, codec: str, data: bytes) -> None:
    """What a hostile writer of a shared catalog and store does: new file, matching row."""
    import xxhash

    (store_root / relpath).write_bytes(data)
    checksum = f"xxh3_128:{xxhash.xxh3_128_hexdigest(data)}"
    with sqlite3.connect(db) as con:
        con.execute("UPDATE artifacts SET codec = ?, size = ?, checksum = ? WHERE relpath = ?",
                    (codec, len(data), checksum, relpath))


@pytest.mark.parametrize("module", ["m_evil_never_imported", "os"])
def test_with_pickle_off_a_forged_module_artifact_is_never_imported(module, make_module,
                                                                    cache_dir, tmp_path):
    tc.configure(allow_pickle=False)
    mod = make_module("m_shared_catalog", NUMBERS)
    evil = make_module("m_evil_never_imported", EVIL)  # written, then forgotten: not imported
    marker = Path(evil.__file__).with_name("imported.marker")
    marker.unlink()
    sys.modules.pop("m_evil_never_imported")
    assert mod.numbers(3) == [0, 1, 2]
    (artifact,) = tc.run(1).record.artifacts
    _rewrite_artifact(cache_dir / "catalog.db", get_runner().store.root, artifact.relpath,
                      "module", f'{{"module": "{module}"}}'.encode())
    runner_module_reset()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert mod.numbers(3) == [0, 1, 2]  # recomputed: never the module
    assert mod.CALLS == [3, 3]
    assert not marker.exists() and "m_evil_never_imported" not in sys.modules
    if module == "os":  # imported already, but not the type recorded: refused as corrupt
        assert any("builtins.list" in text and "builtins.module" in text
                   for text in cache_warnings(caught))


def test_a_codec_that_disagrees_with_the_recorded_type_is_refused(make_module, cache_dir):
    mod = make_module("m_type_swap", NUMBERS)
    assert mod.numbers(2) == [0, 1]
    (artifact,) = tc.run(1).record.artifacts
    with sqlite3.connect(cache_dir / "catalog.db") as con:
        con.execute("UPDATE artifacts SET type_name = 'builtins.dict'")
    runner_module_reset()
    with pytest.warns(CacheWarning, match="builtins.dict"):
        assert mod.numbers(2) == [0, 1]
    assert mod.CALLS == [2, 2]


def test_with_pickle_off_a_module_the_user_imported_still_comes_back(ip):
    ip.run_line_magic("config", "TaskCache.allow_pickle = False")
    cell = "%%task mods\nimport importlib\nm = importlib.import_module('json')"
    assert ip.run_cell(cell).success
    del ip.user_ns["m"]
    assert ip.run_cell(cell).success
    import json

    assert ip.user_ns["m"] is json
    assert "hit mods" in [o["data"]["text/plain"] for o in ip.display_pub.outputs][-1]


# -- item 10: permissions --------------------------------------------------------------------------

def mode(path: Path) -> int:
    return path.stat().st_mode & 0o777


def test_the_catalog_and_its_wal_and_shm_are_created_0600(cache_dir):
    @tc.task
    def one(x):
        return x

    one(1)
    files = [cache_dir / f"catalog.db{suffix}" for suffix in ("", "-wal", "-shm")]
    assert all(f.exists() for f in files)  # the runner's connections are still open
    assert [mode(f) for f in files] == [0o600] * 3


def test_an_existing_catalog_readable_by_others_is_made_private(cache_dir):
    get_runner()
    runner_module_reset()
    os.chmod(cache_dir / "catalog.db", 0o644)
    get_runner()
    assert mode(cache_dir / "catalog.db") == 0o600


WITHOUT_ROOT_OVERRIDE = ["setpriv", "--bounding-set=-dac_override,-dac_read_search",
                         "--inh-caps=-dac_override,-dac_read_search", "--"]

READ_ONLY_WORKER = """
import os, sys, warnings
import taskcache as tc

@tc.task
def inc(x):
    return x + 1

warnings.simplefilter("always")
print(inc(int(sys.argv[1])))
"""


def run_as_owner(script: Path, *args: str, cache: Path) -> subprocess.CompletedProcess:
    """Run ``script`` so that file modes apply to it: as root, without the capabilities
    that let root ignore them (setpriv, in util-linux); as anyone else, as is."""
    prefix = WITHOUT_ROOT_OVERRIDE if os.geteuid() == 0 else []
    env = {**os.environ, "TASKCACHE_DIR": str(cache)}
    try:
        done = subprocess.run([*prefix, sys.executable, str(script), *args], capture_output=True,
                              text=True, env=env, timeout=120)
    except FileNotFoundError:
        pytest.skip("setpriv is not installed: cannot drop root's permission override")
    if prefix and "setpriv:" in done.stderr:
        pytest.skip(f"cannot drop root's permission override here: {done.stderr.strip()}")
    return done


def test_a_read_only_catalog_names_its_shm_file_in_the_fix(tmp_path, cache_dir):
    script = tmp_path / "worker.py"
    script.write_text(READ_ONLY_WORKER)
    assert run_as_owner(script, "1", cache=cache_dir).stdout.strip() == "2"
    os.chmod(cache_dir / "catalog.db", 0o400)
    done = run_as_owner(script, "2", cache=cache_dir)  # SQLite makes a read-only -shm
    assert done.returncode == 0 and done.stdout.strip() == "3", done.stderr
    assert "CacheWarning" in done.stderr and "catalog.db-shm" in done.stderr
    assert "Traceback" not in done.stderr
    fix = done.stderr.split("chmod ", 1)[1].split(" (its folder", 1)[0]
    subprocess.run(f"chmod {fix}", shell=True, check=True)  # the fix, as printed
    os.chmod(cache_dir / "catalog.db", 0o600)
    again = run_as_owner(script, "4", cache=cache_dir)
    assert again.stdout.strip() == "5" and "CacheWarning" not in again.stderr, again.stderr
    assert len(tc.runs(status="completed")) == 2


def test_an_artifacts_folder_that_is_a_symlink_to_another_users_folder_is_refused(tmp_path, cache_dir):
    if not hasattr(os, "geteuid") or os.geteuid() != 0:
        pytest.skip("needs root to create a folder owned by another user")
    theirs = tmp_path / "theirs"
    theirs.mkdir(mode=0o755)
    os.chown(theirs, 65534, 65534)
    cache_dir.mkdir(mode=0o700)
    (cache_dir / "artifacts").symlink_to(theirs)

    @tc.task
    def one(x):
        return x

    with pytest.raises(ConfigError, match="artifacts folder .* belongs to another user"):
        get_runner()
    assert mode(theirs) == 0o755 and theirs.stat().st_uid == 65534  # not chmod-ed
    with pytest.raises(ConfigError, match="artifacts folder"):
        one(1)


# -- item 2: a garbage or half-truncated catalog.db -------------------------------------------------

def _damage(db: Path, how: str) -> None:
    if how == "garbage":
        db.write_bytes(os.urandom(3000) + b"not a database" * 100)
    else:  # half-truncated, as by a copy cut short
        db.write_bytes(db.read_bytes()[: db.stat().st_size // 2])


def _filled_catalog(cache_dir: Path, make_module) -> object:
    mod = make_module("m_damaged", NUMBERS)
    for n in range(40):  # enough runs for the catalog to span many pages
        mod.numbers(n)
    runner_module_reset()  # closes every connection: the WAL is checkpointed into the file
    for suffix in ("-wal", "-shm"):
        assert not (cache_dir / f"catalog.db{suffix}").exists()
    return mod


@pytest.mark.parametrize("how", ["garbage", "truncated"])
def test_a_damaged_catalog_runs_the_code_uncached_with_one_warning(how, make_module, cache_dir,
                                                                  capfd):
    mod = _filled_catalog(cache_dir, make_module)
    db = cache_dir / "catalog.db"
    _damage(db, how)
    with pytest.warns(CacheWarning) as caught:
        assert mod.numbers(3) == [0, 1, 2]
    (text,) = cache_warnings(caught)
    assert str(db) in text and f"mv {db} {db}.broken" in text and "taskcache verify" in text
    assert_no_internals("".join(capfd.readouterr()))

    done = subprocess.run([sys.executable, "-m", "taskcache.cli", "verify"], capture_output=True,
                          text=True, env={**os.environ, "TASKCACHE_DIR": str(cache_dir)})
    assert done.returncode == 1, done.stderr
    assert "damaged" in done.stdout and str(db) in done.stdout
    assert "Traceback" not in done.stderr

    db.rename(db.with_name("catalog.db.broken"))  # the fix, as the warning says
    runner_module_reset()
    with warnings.catch_warnings():
        warnings.simplefilter("error", CacheWarning)
        assert mod.numbers(3) == [0, 1, 2] and mod.numbers(3) == [0, 1, 2]
    assert len(tc.runs(status="completed")) == 1


def test_a_notebook_with_a_damaged_catalog_loads_and_runs_cells(cache_dir, capfd):
    from IPython.core.displaypub import CapturingDisplayPublisher
    from IPython.core.interactiveshell import InteractiveShell

    prepare = tc.task(name="seed")(lambda x: x)
    prepare(1)
    runner_module_reset()
    _damage(cache_dir / "catalog.db", "garbage")
    shell = InteractiveShell.instance()
    shell.display_pub = CapturingDisplayPublisher()
    try:
        with pytest.warns(CacheWarning, match="damaged"):
            shell.run_line_magic("load_ext", "taskcache")
            assert shell.run_cell("%%task damaged\ny = 21 * 2").success
        assert shell.user_ns["y"] == 42
    finally:
        shell.run_line_magic("unload_ext", "taskcache")
    assert_no_internals("".join(capfd.readouterr()))


# -- item 11: the smaller ones -----------------------------------------------------------------------

def test_rm_rf_of_the_cache_while_a_kernel_runs_recreates_it(ip, cache_dir, make_module):
    import shutil

    mod = make_module("m_rm_rf", NUMBERS)
    ip.user_ns["n"] = 4
    cell = "%%task after_rm\nout = list(range(n))"

    def status() -> str:
        return [o["data"]["text/plain"] for o in ip.display_pub.outputs
                if "taskcache" in o["metadata"]][-1]

    assert ip.run_cell(cell).success and mod.numbers(2) == [0, 1]
    shutil.rmtree(cache_dir)
    assert tc.runs().empty  # a listing sees the new, empty catalog
    shutil.rmtree(cache_dir)  # again, with nothing cached in between
    with warnings.catch_warnings(record=True):
        warnings.simplefilter("always")
        assert ip.run_cell(cell).success
    assert "miss after_rm #1" in status()
    assert ip.run_cell(cell).success and "hit after_rm #1" in status()
    assert mod.numbers(2) == [0, 1] and mod.numbers(2) == [0, 1]
    assert mod.CALLS == [2, 2]
    assert (cache_dir / "catalog.db").is_file() and (cache_dir / ".gitignore").is_file()
    assert sorted(tc.runs()["status"]) == ["completed", "completed"]


KILLED_WRITER = """
import sys, time
from pathlib import Path
from taskcache.storage.store import ArtifactStore

def writer(path):
    Path(path).write_bytes(b"half of it")
    print("writing", flush=True)
    time.sleep(600)

ArtifactStore(Path(sys.argv[1])).write(["task", "1", "out"], ".json", writer)
"""


def test_gc_says_when_it_keeps_the_temp_files_of_a_killed_writer(tmp_path, cache_dir):
    get_runner()
    script = tmp_path / "writer.py"
    script.write_text(KILLED_WRITER)
    writer = subprocess.Popen([sys.executable, str(script), str(cache_dir / "artifacts")],
                              stdout=subprocess.PIPE, text=True)
    assert writer.stdout.readline().strip() == "writing"
    writer.kill()
    writer.wait()
    (temp,) = get_runner().store.temp_files()

    def gc() -> str:
        done = subprocess.run([sys.executable, "-m", "taskcache.cli", "gc"], capture_output=True,
                              text=True, env={**os.environ, "TASKCACHE_DIR": str(cache_dir)})
        assert done.returncode == 0, done.stderr
        return done.stdout

    assert "kept 1 temp files younger than 1 h" in gc() and temp.exists()
    old = temp.stat().st_mtime - 2 * 3600
    os.utime(temp, (old, old))  # an hour and more later
    assert "temp files" not in gc() and not temp.exists()


MAPPED_FRAME = """
import os, sys
import numpy as np
import pandas as pd
import taskcache as tc
from taskcache.lifecycle.runner import get_runner

tc.configure(frame_format="arrow")

@tc.task
def frame(n):
    return pd.DataFrame({"a": np.arange(n, dtype="float64")})

df = frame(400_000)  # 3.2 MB: a hit maps the file
if sys.argv[1] == "write":
    sys.exit(0)
(artifact,) = tc.run(1).record.artifacts
path = get_runner().store.root / artifact.relpath
print("mode", oct(path.stat().st_mode & 0o777), flush=True)
try:
    with open(path, "r+b") as f:  # a careless write: truncate the file under the frame
        f.truncate(0)
    print("truncated", flush=True)
except PermissionError:
    print("refused", flush=True)
print("sum", df["a"].sum(), flush=True)
"""


def test_an_artifact_under_a_mapped_frame_cannot_be_truncated(tmp_path, cache_dir):
    pytest.importorskip("pyarrow")
    script = tmp_path / "mapped.py"
    script.write_text(MAPPED_FRAME)
    first = run_as_owner(script, "write", cache=cache_dir)
    assert first.returncode == 0, first.stderr
    done = run_as_owner(script, "read", cache=cache_dir)
    assert done.returncode == 0, (done.returncode, done.stdout, done.stderr)  # -7: SIGBUS
    assert done.stdout.split() == ["mode", "0o400", "refused", "sum", str(float(sum(range(400_000))))]


# -- item 4: a disk 100 % full ------------------------------------------------------------------------

BLOCKS = """
import sys, warnings
import numpy as np
import taskcache as tc

@tc.task
def block(i):
    print("computing", i, flush=True)
    return np.full(100_000, float(i))  # 800 KB

for i in sys.argv[1:]:
    print("sum", block(int(i)).sum(), flush=True)
"""


@pytest.fixture
def full_disk(cache_dir: Path) -> Iterator[str]:
    """The cache folder on a 3 MB tmpfs ("tmpfs"), or, where mounting is not allowed, a
    limit on file sizes for the processes that use it ("rlimit": no file may grow, so
    SQLite cannot create its -shm, as on a full disk)."""
    cache_dir.mkdir(mode=0o700)
    try:
        done = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m,mode=0700", "tmpfs",
                               str(cache_dir)], capture_output=True, text=True, timeout=30)
        mounted = done.returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        mounted = False
    try:
        yield "tmpfs" if mounted else "rlimit"
    finally:
        from taskcache.lifecycle import runner

        runner.reset()
        if mounted:
            subprocess.run(["umount", "-l", str(cache_dir)], capture_output=True, timeout=30)


def _no_file_growth() -> None:
    import resource
    import signal

    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of a signal
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))


def test_hits_verify_and_gc_work_on_a_full_disk(full_disk, tmp_path, cache_dir):
    script = tmp_path / "blocks.py"
    script.write_text(BLOCKS)
    env = {**os.environ, "TASKCACHE_DIR": str(cache_dir)}

    def run(*args: str, full: bool = True) -> subprocess.CompletedProcess:
        limit = _no_file_growth if full and full_disk == "rlimit" else None
        done = subprocess.run([sys.executable, *args], capture_output=True, text=True, env=env,
                              timeout=120, preexec_fn=limit)
        assert "Traceback" not in done.stderr, done.stderr
        return done

    first = run(str(script), "1", "2", full=False)
    assert first.stdout.split() == ["computing", "1", "sum", "100000.0", "computing", "2", "sum",
                                    "200000.0"], first.stderr
    if full_disk == "tmpfs":
        with contextlib.suppress(OSError), open(cache_dir / "filler", "wb", buffering=0) as f:
            while True:
                f.write(b"\0" * 4096)
        assert os.statvfs(cache_dir).f_bavail == 0

    hit = run(str(script), "1")  # a new process: SQLite cannot create its -shm
    assert hit.returncode == 0 and hit.stdout.split() == ["sum", "100000.0"], hit.stderr
    verify = run("-m", "taskcache.cli", "verify")
    assert verify.returncode == 0 and "2 artifacts checked, 0 broken" in verify.stdout
    listed = run("-m", "taskcache.cli", "runs")
    assert listed.returncode == 0 and listed.stdout.count("completed") == 2
    if full_disk == "rlimit":
        return  # deleting files frees no room under a size limit: gc is tried on a tmpfs only
    gc = run("-m", "taskcache.cli", "gc", "--keep-last", "1")
    assert gc.returncode == 0 and "removed 1 runs and 1 files" in gc.stdout, gc.stderr
    assert run("-m", "taskcache.cli", "runs").stdout.count("completed") == 1
    again = run(str(script), "2")
    assert again.stdout.split() == ["sum", "200000.0"], again.stderr
