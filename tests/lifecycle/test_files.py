"""Files a run reads are inputs, files it writes are outputs: real IPython shells, real
files (CSV, .npy, Parquet, JSON), real @task functions."""

from __future__ import annotations

import json
import os
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import taskcache as tc
from taskcache.lifecycle.runner import get_runner
from taskcache.lifecycle.tracking import RecordedFiles
from taskcache.records import Claim, RunRecord
from taskcache.storage.filestate import snapshot


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The working folder of the notebook (the cache lives beside it, in tmp_path/cache)."""
    folder = tmp_path / "work"
    folder.mkdir()
    monkeypatch.chdir(folder)
    return folder


def status(ip) -> str:
    return [o["data"]["text/plain"] for o in ip.display_pub.outputs
            if "taskcache" in o["metadata"]][-1]


def run(ip, cell: str) -> str:
    result = ip.run_cell(cell)
    assert result.success, result.error_in_exec
    return status(ip)


def rewrite(path: Path, text: str) -> None:
    path.write_text(text)


CSV_CELL = "%%task load\nimport pandas as pd\ndf = pd.read_csv('x.csv')\n"


def test_editing_a_csv_read_by_the_cell_is_a_miss(ip, work):
    rewrite(work / "x.csv", "a\n1\n")
    assert "miss load #1" in run(ip, CSV_CELL)
    assert "hit load #1" in run(ip, CSV_CELL)
    rewrite(work / "x.csv", "a\n1\n2\n")
    assert "miss load #2" in run(ip, CSV_CELL)
    assert ip.user_ns["df"]["a"].tolist() == [1, 2]
    assert "hit load #2" in run(ip, CSV_CELL)


def test_a_same_size_edit_with_the_old_mtime_put_back_is_still_a_miss(ip, work):
    """Size and mtime can be made identical (os.utime); the ctime cannot be set back, and a
    file changed within 2 s of being recorded is re-read anyway."""
    x = work / "x.csv"
    rewrite(x, "a\n1\n")
    run(ip, CSV_CELL)
    before = os.stat(x)
    rewrite(x, "a\n7\n")  # same size, same inode
    os.utime(x, ns=(before.st_atime_ns, before.st_mtime_ns))
    after = os.stat(x)
    assert (after.st_size, after.st_mtime_ns, after.st_ino) == (before.st_size, before.st_mtime_ns, before.st_ino)
    assert "miss load #2" in run(ip, CSV_CELL)
    assert ip.user_ns["df"]["a"].tolist() == [7]


def test_going_back_to_an_earlier_state_of_the_file_hits_its_run(ip, work):
    x = work / "x.csv"
    rewrite(x, "a\n1\n")
    run(ip, CSV_CELL)
    rewrite(x, "a\n2\n")
    run(ip, CSV_CELL)
    rewrite(x, "a\n1\n")
    assert "hit load #1" in run(ip, CSV_CELL)
    assert ip.user_ns["df"]["a"].tolist() == [1]
    completed = tc.runs(task="load", status="completed")
    assert len(completed) == 2 and completed["fingerprint"].nunique() == 1


def test_np_load(ip, work):
    np.save(work / "w.npy", np.arange(3))
    cell = "%%task weights\nimport numpy as np\nw = np.load('w.npy')\n"
    run(ip, cell)
    assert "hit" in run(ip, cell)
    np.save(work / "w.npy", np.arange(4))
    assert "miss weights #2" in run(ip, cell)
    assert ip.user_ns["w"].tolist() == [0, 1, 2, 3]


def test_read_parquet_bypasses_open_and_is_caught_by_its_path(ip, work):
    pd.DataFrame({"a": [1, 2]}).to_parquet(work / "d.parquet")
    cell = "%%task pq\nimport pandas as pd\nframe = pd.read_parquet('d.parquet')\n"
    run(ip, cell)
    assert "hit" in run(ip, cell)
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(work / "d.parquet")
    assert "miss pq #2" in run(ip, cell)
    assert len(ip.user_ns["frame"]) == 3
    # a path held in an input variable counts too
    ip.user_ns["source"] = str(work / "d.parquet")
    by_variable = "%%task pq2\nimport pyarrow.parquet as pq\nt = pq.read_table(source).num_rows\n"
    run(ip, by_variable)
    pd.DataFrame({"a": [1]}).to_parquet(work / "d.parquet")
    assert "miss pq2 #4" in run(ip, by_variable) and ip.user_ns["t"] == 1


def test_json_load_inside_a_helper_defined_in_another_cell(ip, work):
    (work / "cfg.json").write_text(json.dumps({"alpha": 1}))
    ip.run_cell("import json\ndef settings(name):\n    with open(name) as f:\n        return json.load(f)\n")
    cell = "%%task cfg\nalpha = settings('cfg' + '.json')['alpha']\n"  # no literal path
    run(ip, cell)
    assert "hit" in run(ip, cell)
    (work / "cfg.json").write_text(json.dumps({"alpha": 2}))
    assert "miss cfg #2" in run(ip, cell) and ip.user_ns["alpha"] == 2


def test_glob_sees_a_new_file(ip, work):
    (work / "d").mkdir()
    (work / "d" / "a.csv").write_text("v\n1\n")
    cell = "%%task parts\nimport glob\nnames = sorted(glob.glob('d/*.csv'))\n"
    run(ip, cell)
    assert "hit" in run(ip, cell)
    (work / "d" / "b.csv").write_text("v\n2\n")
    assert "miss parts #2" in run(ip, cell)
    assert ip.user_ns["names"] == ["d/a.csv", "d/b.csv"]


def runs_of(fn) -> int:
    return len(tc.runs(task=fn.task_name))


def test_a_task_function_reading_its_path_argument(work):
    @tc.task
    def size_of(path: str) -> int:
        with open(path) as f:
            return len(f.read())

    (work / "t.txt").write_text("abc")
    assert size_of("t.txt") == 3 and size_of("t.txt") == 3 and runs_of(size_of) == 1
    (work / "t.txt").write_text("abcdef")
    assert size_of("t.txt") == 6 and runs_of(size_of) == 2
    assert size_of.lookup("t.txt").record.files[0].path == str(work / "t.txt")


def test_a_written_file_deleted_is_put_back_and_an_identical_one_left_alone(ip, work):
    ip.user_ns["frame"] = pd.DataFrame({"a": [1, 2]})
    cell = "%%task save\nframe.to_csv('out.csv')\nn = len(frame)\n"
    run(ip, cell)
    out = work / "out.csv"
    written = out.read_text()
    stat = os.stat(out)
    assert "hit save #1" in run(ip, cell)
    again = os.stat(out)
    assert (again.st_ino, again.st_mtime_ns, again.st_ctime_ns) == (stat.st_ino, stat.st_mtime_ns, stat.st_ctime_ns)
    out.unlink()
    assert "hit save #1" in run(ip, cell)
    assert out.read_text() == written
    out.write_text("edited by hand")
    assert "hit save #1" in run(ip, cell)
    assert out.read_text() == written and oct(os.stat(out).st_mode & 0o777) == oct(stat.st_mode & 0o777)


def test_a_file_written_by_arrow_is_an_output_too(ip, work):
    """to_parquet bypasses open; the path literal, created during the run, is an output."""
    cell = "%%task wr\nimport pandas as pd\npd.DataFrame({'a': [1]}).to_parquet('o.parquet')\n"
    run(ip, cell)
    (work / "o.parquet").unlink()
    assert "hit wr #1" in run(ip, cell)
    assert pd.read_parquet(work / "o.parquet")["a"].tolist() == [1]


def test_files_past_max_file_output_are_recorded_by_hash_only(ip, work):
    ip.run_line_magic("config", 'TaskCache.max_file_output = "10B"')
    cell = "%%task big\nopen('big.txt', 'w').write('x' * 100)\nopen('small.txt', 'w').write('y')\n"
    run(ip, cell)
    record = tc.run(1).record
    stored = {a.name for a in record.artifacts if a.codec == "file"}
    assert stored == {f"file:{work / 'small.txt'}"}
    assert {f.path for f in record.files if f.role == "written"} == {str(work / "big.txt"), str(work / "small.txt")}
    assert "hit big #1" in run(ip, cell)
    (work / "small.txt").unlink()
    assert "hit big #1" in run(ip, cell) and (work / "small.txt").read_text() == "y"
    (work / "big.txt").unlink()
    assert "miss big #2" in run(ip, cell) and (work / "big.txt").stat().st_size == 100


def test_opting_out(ip, work):
    rewrite(work / "x.csv", "a\n1\n")
    cell = "%%task quiet_load --no-track-files\nimport pandas as pd\ndf = pd.read_csv('x.csv')\n"
    run(ip, cell)
    rewrite(work / "x.csv", "a\n1\n2\n")
    assert "hit quiet_load #1" in run(ip, cell)
    assert ip.user_ns["df"]["a"].tolist() == [1]  # as asked: the file is not looked at

    @tc.task(track_files=False)
    def untracked(path):
        return open(path).read()

    untracked("x.csv")
    rewrite(work / "x.csv", "changed")
    assert untracked("x.csv") == "a\n1\n2\n" and runs_of(untracked) == 1


def test_declaring_files_the_tracker_cannot_see(ip, work):
    """pyarrow reads a path computed at run time: neither open nor a path value shows it."""
    pd.DataFrame({"a": [1]}).to_parquet(work / "hidden.parquet")
    body = "import pyarrow.parquet as pq\nn = pq.read_table('hid' + 'den.parquet').num_rows\n"
    run(ip, "%%task blind\n" + body)
    run(ip, "%%task seen --files hidden.parquet,data/\n" + body)
    pd.DataFrame({"a": [1, 2]}).to_parquet(work / "hidden.parquet")
    assert "hit blind #1" in run(ip, "%%task blind\n" + body)  # the limit, documented
    assert "miss seen #3" in run(ip, "%%task seen --files hidden.parquet,data/\n" + body)
    assert ip.user_ns["n"] == 2
    (work / "data").mkdir()  # declared absent: its appearance is a change too
    assert "miss seen #4" in run(ip, "%%task seen --files hidden.parquet,data/\n" + body)

    import pyarrow.parquet as pq

    @tc.task(files=["hidden.parquet"])
    def rows(stem: str) -> int:
        return pq.read_table(stem + ".parquet").num_rows

    assert rows("hidden") == 2
    pd.DataFrame({"a": [1, 2, 3]}).to_parquet(work / "hidden.parquet")
    assert rows("hidden") == 3


def test_why_names_the_file(ip, work, capsys):
    rewrite(work / "x.csv", "a\n1\n")
    run(ip, CSV_CELL)
    rewrite(work / "x.csv", "a\n1\n22\n")
    run(ip, CSV_CELL)
    modified = time.strftime("%H:%M", time.localtime(os.stat(work / "x.csv").st_mtime))
    capsys.readouterr()
    ip.run_line_magic("taskcache", "why load")
    assert capsys.readouterr().out.splitlines() == [
        "load #2 missed because, compared with #1:",
        f"  - input file x.csv changed (4 B -> 7 B, modified {modified})"]


def test_lineage_links_the_writer_to_the_reader(ip, work):
    ip.user_ns["frame"] = pd.DataFrame({"a": [1, 2]})
    run(ip, "%%task write\nframe.to_csv('shared.csv', index=False)\n")
    run(ip, "%%task read\nimport pandas as pd\nback = pd.read_csv('shared.csv')\n")
    reader = tc.run(2)
    assert [r.id for r in reader.upstream()] == [1]
    assert reader.inputs["shared.csv"].producer_run_id == 1
    assert [r.id for r in tc.run(1).downstream()] == [2]


def test_reads_are_attributed_to_the_run_of_their_own_thread(work):
    for name in ("a", "b"):
        (work / f"{name}.txt").write_text(name)
    barrier = threading.Barrier(2)

    @tc.task(ignore=["barrier"])
    def read(path_hidden: list, barrier: threading.Barrier) -> str:
        barrier.wait()  # both runs are executing at once
        name = path_hidden[0]
        return open(name + ".txt").read()

    results = {}

    def call(name: str) -> None:
        results[name] = read([name], barrier)

    threads = [threading.Thread(target=call, args=(n,)) for n in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results == {"a": "a", "b": "b"}
    for run_ in tc.runs(task=read.task_name).index:
        record = tc.run(int(run_)).record
        (only,) = [f.path for f in record.files]
        assert only == str(work / f"{record.inputs[0].repr[2]}.txt")


def test_a_nested_hit_counts_its_files_for_the_enclosing_run(ip, work):
    (work / "n.txt").write_text("1")

    @tc.task
    def inner() -> str:
        return open("n" + ".txt").read()

    ip.user_ns["inner"] = inner
    inner()  # cached before the cell runs
    ip.user_ns["bump"] = 0
    run(ip, "%%task outer\nvalue = inner() + str(bump)\n")
    assert [f.path for f in tc.run(2).record.files] == [str(work / "n.txt")]
    (work / "n.txt").write_text("2")
    assert "miss outer #3" in run(ip, "%%task outer\nvalue = inner() + str(bump)\n")
    assert ip.user_ns["value"] == "20"


def test_imports_the_cache_folder_and_python_itself_are_not_inputs(ip, work, cache_dir):
    cell = ("%%task quiet\nimport importlib, sys, email.mime.text\n"
            "importlib.reload(email.mime.text)\n"
            f"open({str(cache_dir / 'catalog.db')!r}, 'rb').read(10)\n"
            "open(sys.modules['json'].__file__).read(10)\nn = 1\n")
    run(ip, cell)
    assert tc.run(1).record.files == ()


def test_a_file_the_run_wrote_before_reading_is_not_an_input(ip, work):
    cell = "%%task roundtrip\nopen('tmp.txt', 'w').write('5')\nv = open('tmp.txt').read()\n"
    run(ip, cell)
    files = tc.run(1).record.files
    assert [(f.path, f.role) for f in files] == [(str(work / "tmp.txt"), "written")]


def test_the_browser_lists_files_among_the_inputs(ip, work):
    from taskcache.browser import formatting as fmt

    rewrite(work / "x.csv", "a\n1\n")
    run(ip, CSV_CELL)
    html = fmt.inputs_html(tc.run(1).record.inputs)
    assert "x.csv" in html and ">file<" in html and "4 B, modified" in html


def test_single_flight_does_not_serve_a_run_whose_files_changed(work):
    """acquire() (what a second caller does) claims a new run instead of returning the
    completed run of the old file state, and waits for a running one."""
    (work / "s.txt").write_text("1")

    @tc.task
    def read_s() -> str:
        return open("s.txt").read()

    read_s()
    (work / "s.txt").write_text("2")
    runner = get_runner()
    call = read_s.__taskcache__.prepare((), {})
    spec = call.spec()
    # one transaction decides: the caller passes the newest run it found stale, so that no
    # other process can slip in between "that run is stale" and "claim a new one"
    stale = runner.catalog.claim_or_join(spec, lease_seconds=60)
    assert isinstance(stale, RunRecord) and stale.status == "completed"
    claim = runner.acquire(spec)
    assert isinstance(claim, Claim) and claim.run_id == stale.id + 1  # not the stale hit
    joined = runner.catalog.claim_or_join(spec, lease_seconds=60, newer_than=stale.id)
    assert isinstance(joined, RunRecord) and joined.id == claim.run_id  # join the running one
    joined = {}

    def second() -> None:
        joined["outcome"] = runner.acquire(spec, max_wait=30)

    waiter = threading.Thread(target=second)
    waiter.start()
    time.sleep(0.3)
    assert waiter.is_alive()  # waiting for our running run
    runner.save(claim, read_s.task_name, {"return": "2"}, duration=0.1,
                files=RecordedFiles(reads=[snapshot(str(work / "s.txt"), "read")]))
    waiter.join(30)
    assert joined["outcome"].outputs["return"] == "2"


def test_reads_outside_runs_belong_to_no_run(ip, work):
    run(ip, "%%task first\nv = open('free.txt', 'w').write('x')\n")  # the hook is installed
    assert open(work / "free.txt").read() == "x"  # outside any run
    run(ip, "%%task second\nw = 2\n")
    assert [f.path for f in tc.run(1).record.files] == [str(work / "free.txt")]
    assert tc.run(2).record.files == ()


def test_loading_a_run_leaves_its_file_copies_out_of_the_namespace(ip, work):
    ip.user_ns["frame"] = pd.DataFrame({"a": [1]})
    run(ip, "%%task save\nframe.to_csv('out.csv')\nn = len(frame)\n")
    ip.user_ns.pop("n")
    ip.run_line_magic("taskcache", "load 1")
    assert ip.user_ns["n"] == 1 and not [k for k in ip.user_ns if k.startswith("file:")]
    copy = tc.run(1).outputs[f"file:{work / 'out.csv'}"]  # still loadable by name: the bytes
    assert copy == (work / "out.csv").read_bytes()


def test_with_pickle_off_a_hit_writes_files_only_inside_the_working_folder(ip, work, tmp_path):
    ip.run_line_magic("config", "TaskCache.allow_pickle = False")
    outside = tmp_path / "elsewhere.txt"
    ip.user_ns["target"] = str(outside)
    cell = "%%task out\nopen(target, 'w').write('1')\nopen('inside.txt', 'w').write('2')\n"
    run(ip, cell)
    (work / "inside.txt").unlink()
    assert "hit out #1" in run(ip, cell) and (work / "inside.txt").read_text() == "2"
    outside.unlink()
    assert "miss out #2" in run(ip, cell) and outside.read_text() == "1"


def test_a_nested_task_reading_through_arrow_counts_for_the_enclosing_cell(ip, work):
    """The inner task sees its Parquet file by its path argument (Arrow bypasses open);
    the enclosing cell, which only passes a computed name, must depend on it too."""
    import pyarrow.parquet as pq

    pd.DataFrame({"a": [1]}).to_parquet(work / "inner.parquet")

    @tc.task
    def count(path: str) -> int:
        return pq.read_table(path).num_rows

    ip.user_ns["count"] = count
    cell = "%%task wrap\nn = count('inn' + 'er.parquet')\n"
    run(ip, cell)
    assert tc.run(1).task == "wrap" and str(work / "inner.parquet") in [f.path for f in tc.run(1).record.files]
    pd.DataFrame({"a": [1, 2]}).to_parquet(work / "inner.parquet")
    assert "miss wrap" in run(ip, cell) and ip.user_ns["n"] == 2


def test_a_log_appended_to_is_neither_input_nor_output_even_when_named(work):
    log = work / "log.txt"

    @tc.task
    def step(i: int) -> int:
        with open("log.txt", "a") as f:  # a literal path that exists: still a log
            f.write(f"{i}\n")
        return i

    log.write_text("start\n")
    assert [step(1), step(1), step(2), step(1)] == [1, 1, 2, 1]
    assert log.read_text() == "start\n1\n2\n"  # one line per real run, none put back
    assert all(not r.files and not r.artifacts[1:] for r in map(tc.run, tc.runs(task=step.task_name).index))
