"""@task end to end: real module files, a real SQLite catalog, real artifact files."""

from __future__ import annotations

import asyncio
import inspect
import os
import subprocess
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import taskcache as tc
from taskcache.errors import CacheWarning, FingerprintError
from taskcache.lifecycle.runner import get_runner

COUNTER = """
import taskcache as tc
CALLS = []

def helper(x):
    return x * 2

@tc.task
def compute(x, y=1):
    CALLS.append((x, y))
    return helper(x) + y
"""


def test_miss_then_hit_returns_same_value(make_module):
    mod = make_module("m_basic", COUNTER)
    assert mod.compute(3) == 7
    assert mod.compute(3) == 7
    assert mod.CALLS == [(3, 1)]
    runs = tc.runs(task="m_basic.compute")
    assert list(runs["status"]) == ["completed"]
    assert runs["hit_count"].iloc[0] == 1


def test_argument_change_is_a_miss(make_module):
    mod = make_module("m_args", COUNTER)
    mod.compute(3)
    mod.compute(4)
    mod.compute(3, y=2)
    mod.compute(x=3, y=1)  # same call spelled differently: hit
    assert mod.CALLS == [(3, 1), (4, 1), (3, 2)]


def test_code_change_is_a_miss_but_comment_change_is_a_hit(make_module):
    make_module("m_v", COUNTER).compute(5)
    commented = COUNTER.replace("return helper(x) + y", "return helper(x) + y  # same")
    commented = commented.replace("def compute(x, y=1):", 'def compute(x, y=1):\n    """Doc."""')
    v2 = make_module("m_v", commented)  # the same module, edited
    assert v2.compute(5) == 11 and v2.CALLS == []  # hit: only comments/docstring changed
    v3 = make_module("m_v", COUNTER.replace("return helper(x) + y", "return helper(x) + y + 0"))
    v3.compute(5)
    assert v3.CALLS == [(5, 1)]


def test_editing_a_referenced_helper_is_a_miss(make_module):
    make_module("m_h", COUNTER).compute(5)
    edited = make_module("m_h", COUNTER.replace("return x * 2", "return x * 3"))
    assert edited.compute(5) == 16
    assert edited.CALLS == [(5, 1)]


def test_mutated_dataframe_is_a_miss(make_module):
    mod = make_module("m_df", """
        import taskcache as tc
        CALLS = []

        @tc.task
        def total(df):
            CALLS.append(1)
            return float(df["a"].sum())
    """)
    df = pd.DataFrame({"a": [1.0, 2.0, 3.0]})
    assert mod.total(df) == 6.0
    assert mod.total(df.copy()) == 6.0
    df.loc[0, "a"] = 10.0
    assert mod.total(df) == 15.0
    assert len(mod.CALLS) == 2


@pytest.mark.parametrize(
    "value",
    [
        pd.DataFrame({"a": [1, 2], "b": ["x", "y"]}, index=pd.Index([10, 20], name="k")),
        np.arange(12, dtype=np.float32).reshape(3, 4),
        {"n": 1, "t": (1, 2), 3: [None, float("inf")], "b": b"\x00"},
        pd.Series([1.5, None], name="s"),
    ],
    ids=["frame", "array", "dict", "series"],
)
def test_outputs_round_trip_exactly(make_module, value):
    mod = make_module("m_rt", """
        import taskcache as tc

        @tc.task
        def echo(v):
            return v
    """)
    first = mod.echo(value)
    again = mod.echo(value)  # from disk
    assert type(again) is type(value)
    if isinstance(value, pd.DataFrame):
        pd.testing.assert_frame_equal(again, value, check_exact=True)
    elif isinstance(value, pd.Series):
        pd.testing.assert_series_equal(again, value, check_exact=True)
    elif isinstance(value, np.ndarray):
        assert again.dtype == value.dtype and np.array_equal(again, value)
    else:
        assert again == value and first == value
    assert tc.runs(task="m_rt.echo")["hit_count"].iloc[0] == 1


def test_failure_is_recorded_and_reraised_unchanged(make_module):
    mod = make_module("m_fail", """
        import taskcache as tc
        ERR = ValueError("bad input 42")

        @tc.task
        def boom(x):
            raise ERR
    """)
    with pytest.raises(ValueError) as info:
        mod.boom(1)
    assert info.value is mod.ERR
    (run_id,) = tc.runs(task="m_fail.boom").index
    run = tc.run(run_id)
    assert run.status == "failed"
    assert run.error["type"] == "builtins.ValueError"
    assert "bad input 42" in run.error["traceback"] and "raise ERR" in run.error["traceback"]
    assert [h.to_status for h in run.history()][-2:] == ["running", "failed"]
    with pytest.raises(ValueError):  # failures are never served from cache
        mod.boom(1)
    assert len(tc.runs(task="m_fail.boom")) == 2


def test_keyboard_interrupt_marks_cancelled(make_module):
    mod = make_module("m_cancel", """
        import taskcache as tc

        @tc.task
        def interrupted():
            raise KeyboardInterrupt
    """)
    with pytest.raises(KeyboardInterrupt):
        mod.interrupted()
    assert list(tc.runs(task="m_cancel.interrupted")["status"]) == ["cancelled"]


def test_unhashable_argument_names_it_and_does_not_run(make_module):
    mod = make_module("m_unhash", """
        import taskcache as tc
        CALLS = []

        @tc.task
        def use(lock, n):
            CALLS.append(n)
    """)
    import threading

    with pytest.raises(FingerprintError) as info:
        mod.use(threading.Lock(), 1)
    message = str(info.value)
    assert "'lock'" in message and "ignore" in message and "register_hasher" in message
    assert mod.CALLS == []


def test_ignore_leaves_an_argument_out_of_the_key(make_module):
    mod = make_module("m_ignore", """
        import taskcache as tc
        CALLS = []

        @tc.task(ignore=["verbose"])
        def work(n, verbose=False):
            CALLS.append(n)
            return n
    """)
    mod.work(1, verbose=True)
    mod.work(1, verbose=False)
    assert mod.CALLS == [1]


def test_ignore_of_unknown_parameter_is_refused():
    with pytest.raises(ValueError, match="nope"):
        tc.task(ignore=["nope"])(lambda x: x)


def test_unstorable_result_warns_returns_and_records_why(make_module):
    tc.configure(allow_pickle=False)
    mod = make_module("m_unstorable", """
        import taskcache as tc

        class Opaque:
            pass

        @tc.task
        def make():
            return Opaque()
    """)
    with pytest.warns(CacheWarning, match="Opaque"):
        value = mod.make()
    assert isinstance(value, mod.Opaque)
    (run_id,) = tc.runs(task="m_unstorable.make").index
    run = tc.run(run_id)
    assert run.status == "failed" and "not cached" in tc.run(run_id).history()[-1].reason


def test_corrupt_artifact_is_detected_and_recomputed(make_module):
    mod = make_module("m_corrupt", COUNTER)
    mod.compute(2)
    run = tc.run(int(tc.runs(task="m_corrupt.compute").index[0]))
    path = get_runner().store.path_of(run.artifacts[0].relpath)
    path.write_bytes(path.read_bytes()[:-1] + b"9")
    with pytest.warns(CacheWarning, match="corrupt"):
        assert mod.compute(2) == 5
    assert len(mod.CALLS) == 2
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert mod.compute(2) == 5  # the recomputed run serves hits again
    assert len(mod.CALLS) == 2


def test_deleted_artifact_is_recomputed(make_module):
    mod = make_module("m_deleted", COUNTER)
    mod.compute(2)
    run = tc.run(int(tc.runs(task="m_deleted.compute").index[0]))
    get_runner().store.path_of(run.artifacts[0].relpath).unlink()
    with pytest.warns(CacheWarning, match="missing"):
        assert mod.compute(2) == 5
    assert len(mod.CALLS) == 2


def test_hostile_task_name_stays_under_the_store_root(make_module, cache_dir):
    mod = make_module("m_hostile", """
        import taskcache as tc

        @tc.task(name="../../../../tmp/evil/..\\\\x\\x00")
        def f():
            return [1]
    """)
    assert mod.f() == [1]
    (run_id,) = tc.runs().index
    relpath = tc.run(run_id).artifacts[0].relpath
    resolved = get_runner().store.path_of(relpath).resolve()
    assert resolved.is_relative_to((cache_dir / "artifacts").resolve())
    assert ".." not in Path(relpath).parts


def test_lineage_links_an_input_to_the_run_that_produced_it(make_module):
    mod = make_module("m_lineage", """
        import pandas as pd
        import taskcache as tc

        @tc.task
        def load(n):
            return pd.DataFrame({"v": range(n)})

        @tc.task
        def stats(frame):
            return {"mean": float(frame["v"].mean())}
    """)
    stats = mod.stats(mod.load(10))
    assert stats == {"mean": 4.5}
    load_run = tc.run(int(tc.runs(task="m_lineage.load").index[0]))
    stats_run = tc.run(int(tc.runs(task="m_lineage.stats").index[0]))
    assert stats_run.upstream() == [load_run]
    assert load_run.downstream() == [stats_run]
    assert stats_run.inputs["frame"].producer_run_id == load_run.id


def test_nested_task_records_its_parent(make_module):
    mod = make_module("m_nested", """
        import taskcache as tc

        @tc.task
        def inner(x):
            return x + 1

        @tc.task
        def outer(x):
            return inner(x) * 10
    """)
    assert mod.outer(1) == 20
    outer_id = int(tc.runs(task="m_nested.outer").index[0])
    inner_run = tc.run(int(tc.runs(task="m_nested.inner").index[0]))
    assert inner_run.parent_run_id == outer_id


def test_editing_a_nested_task_invalidates_its_caller(make_module):
    src = """
        import taskcache as tc
        CALLS = []

        @tc.task
        def inner(x):
            return x + 1

        @tc.task
        def outer(x):
            CALLS.append(x)
            return inner(x) * 10
    """
    make_module("m_nest", src).outer(1)
    edited = make_module("m_nest", src.replace("return x + 1", "return x + 2"))
    assert edited.outer(1) == 30
    assert edited.CALLS == [1]


def test_async_functions(make_module):
    mod = make_module("m_async", """
        import asyncio
        import taskcache as tc
        CALLS = []

        @tc.task
        async def fetch(x):
            CALLS.append(x)
            await asyncio.sleep(0)
            return {"x": x}
    """)
    assert inspect.iscoroutinefunction(mod.fetch)
    assert asyncio.run(mod.fetch(1)) == {"x": 1}
    assert asyncio.run(mod.fetch(1)) == {"x": 1}
    assert mod.CALLS == [1]


def test_wrapper_keeps_signature_doc_and_helpers(make_module):
    mod = make_module("m_api", '''
        import taskcache as tc
        CALLS = []

        @tc.task(name="scaled", version=2, tags=["exp"])
        def scale(x: float, factor: float = 2.0) -> float:
            """Multiply x by factor."""
            CALLS.append(x)
            return x * factor
    ''')
    assert str(inspect.signature(mod.scale)) == "(x: float, factor: float = 2.0) -> float"
    assert mod.scale.__doc__ == "Multiply x by factor."
    assert mod.scale.lookup(3.0) is None
    assert mod.scale(3.0) == 6.0
    found = mod.scale.lookup(3.0)
    assert found is not None and found.outputs["return"] == 6.0
    assert mod.scale.force(3.0) == 6.0
    assert mod.CALLS == [3.0, 3.0]
    runs = mod.scale.runs()
    assert len(runs) == 2 and set(runs["tags"]) == {"exp"} and set(runs["user_version"]) == {"2"}
    assert mod.scale.clear() == 2
    assert len(mod.scale.runs()) == 0
    assert not any(get_runner().store.root.rglob("*.json"))


def test_user_version_change_is_a_miss(make_module):
    src = """
        import taskcache as tc
        CALLS = []

        @tc.task(version=1)
        def f(x):
            CALLS.append(x)
            return x
    """
    make_module("m_ver", src).f(1)
    bumped = make_module("m_ver", src.replace("version=1", "version=2"))
    bumped.f(1)
    assert bumped.CALLS == [1]


def test_environment_is_recorded(make_module):
    mod = make_module("m_env", """
        import numpy as np
        import taskcache as tc

        @tc.task
        def f(n):
            return np.arange(n)
    """)
    mod.f(3)
    run = tc.run(int(tc.runs().index[0]))
    assert run.env["python"].startswith("3.")
    assert run.env["packages"].get("numpy") == np.__version__
    assert run.host and run.pid


def test_events_fire_after_commit(make_module):
    seen = []
    off = tc.on("completed", lambda record: seen.append((record.task, tc.run(record.id).status)))
    try:
        make_module("m_events", COUNTER).compute(1)
    finally:
        off()
    assert seen == [("m_events.compute", "completed")]


def test_summary_counts_hits_and_time_saved(make_module):
    mod = make_module("m_summary", COUNTER)
    mod.compute(1)
    mod.compute(1)
    mod.compute(1)
    s = tc.summary()
    assert s["runs"] == 1 and s["hits"] == 2 and s["by_status"] == {"completed": 1}
    assert s["time_saved"] >= 0 and s["disk_bytes"] > 0


def test_import_taskcache_stays_light():
    code = "import sys, taskcache; print(sorted(m for m in ('pandas', 'pyarrow', 'ipywidgets', 'numpy') if m in sys.modules))"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_hit_counts_reach_the_catalog_without_a_read_from_this_process(make_module):
    from taskcache.catalog import Catalog

    mod = make_module("m_hits", COUNTER)
    mod.compute(1)
    mod.compute(1)
    mod.compute(1)
    other = Catalog(get_runner().settings.db_url)  # as another kernel would read it
    try:
        (record,) = other.query_runs(task="m_hits.compute")
        deadline = time.monotonic() + 10
        while record.hit_count < 2 and time.monotonic() < deadline:
            time.sleep(0.1)
            (record,) = other.query_runs(task="m_hits.compute")
        assert record.hit_count == 2 and record.last_hit_at is not None
    finally:
        other.dispose()


FRAMES = """
import numpy as np
import pandas as pd
import taskcache as tc
CALLS = []

@tc.task
def make(n):
    CALLS.append(n)
    rng = np.random.default_rng(n)
    return pd.DataFrame({"x": rng.random(n), "k": np.arange(n), "s": [f"r{i}" for i in range(n)]})
"""


@pytest.mark.parametrize("frame_format", ["parquet", "arrow"])
def test_frame_format_setting_and_loaded_frames_are_private_copies(make_module, frame_format):
    tc.configure(frame_format=frame_format)
    mod = make_module(f"m_frames_{frame_format}", FRAMES)
    first = mod.make(1000)
    assert tc.runs(task=f"m_frames_{frame_format}.make", limit=1)["status"].iloc[0] == "completed"
    run = mod.make.lookup(1000)
    assert run.record.artifacts[0].codec == frame_format
    hit = mod.make(1000)
    assert mod.CALLS == [1000] and hit.equals(first)
    hit.iloc[0, 0] = -1.0  # a loaded frame is the caller's to change ...
    hit["k"] += 1
    again = mod.make(1000)  # ... and the cache does not see it
    assert again.equals(first) and mod.CALLS == [1000]
    from taskcache.lifecycle.maintenance import verify

    assert verify().ok


def test_frame_format_is_validated():
    from taskcache.errors import ConfigError

    with pytest.raises(ConfigError, match="frame_format"):
        tc.configure(frame_format="feather")


SLOW_REPR = """
import taskcache as tc
REPRS = []

class Big:
    def __init__(self, n):
        self.n = n
    def __repr__(self):  # imagine a 2.5M-row DataFrame: formatting it takes milliseconds
        REPRS.append(self.n)
        return f"Big({self.n})"

tc.register_hasher(Big, lambda b: b.n)

@tc.task
def size(big):
    return big.n
"""


def test_a_hit_never_formats_its_arguments(make_module):
    mod = make_module("m_slow_repr", SLOW_REPR)
    assert mod.size(mod.Big(3)) == 3
    assert mod.REPRS == [3]  # the miss records a short repr of the input
    for _ in range(3):
        assert mod.size(mod.Big(3)) == 3
    assert mod.REPRS == [3]
    assert mod.size.lookup(mod.Big(3)).record.inputs[0].repr == "Big(3)"


@pytest.mark.parametrize("frame_format", ["parquet", "arrow"])
def test_big_corrupt_or_missing_frame_is_recomputed(make_module, frame_format):
    """Frames over 1 MiB are checked over the same mapping they are decoded from."""
    tc.configure(frame_format=frame_format)
    mod = make_module(f"m_bigframe_{frame_format}", FRAMES)
    first = mod.make(200_000)
    relpath = mod.make.lookup(200_000).record.artifacts[0].relpath
    path = get_runner().store.path_of(relpath)
    assert path.stat().st_size > 1 << 20
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # one flipped byte in the middle of the values
    path.write_bytes(bytes(data))
    with pytest.warns(CacheWarning, match="corrupt"):
        assert mod.make(200_000).equals(first)
    assert mod.CALLS == [200_000, 200_000]
    assert mod.make(200_000).equals(first) and mod.CALLS == [200_000, 200_000]
    relpath = mod.make.lookup(200_000).record.artifacts[0].relpath
    get_runner().store.path_of(relpath).unlink()
    with pytest.warns(CacheWarning, match="missing|not found|No such"):
        assert mod.make(200_000).equals(first)
    assert len(mod.CALLS) == 3


# -- issue 13: a task's identity, names the catalog cannot store --------------------------------

LAMBDAS = """
import taskcache as tc

square = tc.task(lambda x: x * x)
cube = tc.task(lambda x: x ** 3)
"""


def test_clear_of_one_lambda_keeps_the_runs_of_another(make_module):
    mod = make_module("m_lambdas", LAMBDAS)
    assert mod.square.task_name != mod.cube.task_name
    assert mod.square.task_name.startswith("m_lambdas.<lambda>:")
    assert mod.square(3) == 9 and mod.cube(3) == 27
    assert mod.square.clear() == 1
    assert list(mod.cube.runs()["status"]) == ["completed"]
    assert len(tc.runs()) == 1


def test_same_named_functions_of_two_modules_are_two_tasks(make_module):
    source = "import taskcache as tc\n\n@tc.task\ndef fit(x):\n    return x + {}\n"
    a, b = make_module("m_models_a", source.format(1)), make_module("m_models_b", source.format(2))
    assert (a.fit.task_name, b.fit.task_name) == ("m_models_a.fit", "m_models_b.fit")
    assert a.fit(1) == 2 and b.fit(1) == 3
    assert a.fit.clear() == 1
    assert list(b.fit.runs()["status"]) == ["completed"] and len(tc.runs()) == 1


SLOW_IN_OTHER_PROCESS = """
import sys, time
import taskcache as tc

@tc.task(name="slow")
def slow(x):
    print("started", flush=True)
    time.sleep(float(sys.argv[1]))
    return x

print(slow(1), flush=True)
"""


def test_clear_leaves_the_running_runs_of_other_processes_alone(tmp_path, cache_dir):
    script = tmp_path / "slow.py"
    script.write_text(SLOW_IN_OTHER_PROCESS)
    env = {**os.environ, "TASKCACHE_DIR": str(cache_dir)}

    @tc.task(name="slow")
    def slow(x):
        return x

    assert slow(0) == 0  # a finished run of the same task, in this process
    other = subprocess.Popen([sys.executable, str(script), "3"], stdout=subprocess.PIPE,
                             text=True, env=env)
    assert other.stdout.readline().strip() == "started"
    (running,) = get_runner().catalog.query_runs(task="slow", status="running")
    assert slow.clear() == 1
    assert [r.id for r in get_runner().catalog.query_runs(task="slow")] == [running.id]
    out, _ = other.communicate(timeout=60)
    assert other.returncode == 0 and out.strip() == "1"
    assert get_runner().catalog.get_run(running.id).status == "completed"


@pytest.mark.parametrize("options", [{"name": "a\ud800"}, {"tags": ["t\udcff"]},
                                     {"name": "a\ud800\x00"}, {"version": "v\ud800"}],
                         ids=["surrogate name", "surrogate tag", "surrogate and NUL", "surrogate version"])
def test_a_name_the_catalog_cannot_store_is_refused_when_decorating(options):
    with pytest.raises(ValueError, match="lone surrogate"):
        tc.task(**options)(lambda x: x)
    assert tc.runs(task="a\ud800").empty and tc.runs(tag="t\udcff").empty


def test_a_surrogate_in_a_cell_name_or_tag_is_a_usage_error(ip):
    from IPython.core.error import UsageError

    for line in ("a\ud800", "ok -t t\udcff"):
        with pytest.raises(UsageError, match="lone surrogate"):
            ip.run_cell_magic("task", line, "y = 1")
    assert "y" not in ip.user_ns
