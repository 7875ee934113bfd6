"""Issue 13 item 7: every bad argument to the ``taskcache`` command and to ``%taskcache`` is
a usage message (exit status 2, a UsageError in IPython), never a traceback."""

from __future__ import annotations

import contextlib
import io
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from IPython.core.error import UsageError

import taskcache as tc
from taskcache.cli import main
from taskcache.commands import COMMANDS

BAD_ARGUMENTS = [
    ["show", "99999999999999999999"],
    ["show", "-1"],
    ["show", "0"],
    ["gc", "--older-than-days", "nan"],
    ["gc", "--older-than-days", "inf"],
    ["gc", "--older-than-days", "-3"],
    ["gc", "--keep-last", "-1"],
    ["gc", "--keep-last", "1.5"],
    ["runs", "--limit", "-5"],
    ["runs", "--limit", "99999999999999999999"],
    ["serve", "--port", "0"],
    ["serve", "--port", "65536"],
    ["serve", "--port", "http"],
]


def cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "taskcache.cli", *args],
                          capture_output=True, text=True, timeout=120)


@tc.task
def double(x: int) -> int:
    return 2 * x


@pytest.mark.parametrize("args", BAD_ARGUMENTS, ids=" ".join)
def test_a_bad_argument_is_a_usage_error_with_status_2(args, cache_dir):
    done = cli("--cache-dir", str(cache_dir), *args)
    assert done.returncode == 2, done.stderr
    assert "usage: taskcache" in done.stderr and "error: argument" in done.stderr
    assert "Traceback" not in done.stderr


@pytest.mark.parametrize("where", ["/dev/null", "/dev/null/below"])
def test_a_cache_dir_that_is_not_a_folder_is_a_usage_error(where):
    done = cli("--cache-dir", where, "runs")
    assert done.returncode == 2
    assert "usage: taskcache" in done.stderr and where in done.stderr
    assert "Traceback" not in done.stderr


def test_keep_last_minus_one_deletes_nothing(cache_dir):
    assert double(1) == 2 and double(2) == 4
    done = cli("--cache-dir", str(cache_dir), "gc", "--keep-last", "-1")
    assert done.returncode == 2
    assert len(tc.runs(status="completed")) == 2
    with pytest.raises(ValueError, match="keep_last"):
        tc.gc(keep_last=-1)
    assert len(tc.runs(status="completed")) == 2


@pytest.mark.parametrize("line", [
    "runs \"abc", "show 99999999999999999999", "browse --page-size 0",
    "gc --older-than-days inf", "gc --older-than-days nan", "gc --keep-last -1",
    "load 99999999999999999999", "nosuch", "",
])
def test_a_bad_line_magic_is_a_usage_error(ip, line):
    with pytest.raises(UsageError):
        ip.run_line_magic("taskcache", line)


def test_runs_while_the_catalog_cannot_be_opened_is_a_usage_error(ip, cache_dir):
    ip.run_line_magic("config", f"TaskCache.cache_dir = {str(cache_dir / 'other')!r}")
    (cache_dir / "other" / "catalog.db").mkdir(parents=True)  # not a file: cannot be opened
    with pytest.raises(UsageError, match="catalog.db cannot be used"):
        ip.run_line_magic("taskcache", "runs")
    done = cli("--cache-dir", str(cache_dir / "other"), "runs")
    assert done.returncode == 2 and "cannot be used" in done.stderr
    assert "Traceback" not in done.stderr


# -- property tests: whatever the words, a result or a usage error --------------------------

OPTIONS = ["--task", "--status", "--tag", "--limit", "--dry-run", "--older-than-days",
           "--keep-last", "--max-size", "--keep-failed", "--fix", "--page-size", "--text",
           "--no-live", "--cache-dir", "-h"]
VALUES = ["0", "1", "-1", "nan", "inf", "-inf", "1e309", "99999999999999999999", "2**63",
          "0x10", "1_000", "", " ", "'", '"', "\\", "\x00", "\ud800", "é", "%", "_", "500MB",
          "1.5GiB", "lots", "/dev/null", "-", "--"]
WORD = st.one_of(st.sampled_from(OPTIONS), st.sampled_from(VALUES), st.integers().map(str),
                 st.floats().map(str), st.text(max_size=8))
OPTION_VALUE = st.tuples(st.sampled_from(OPTIONS), st.one_of(st.sampled_from(VALUES), WORD))
#: a subcommand (mostly a real one; not serve, which would start a server), then options
#: with values and loose words
WORDS = st.builds(
    lambda name, pairs, loose: [name, *(w for pair in pairs for w in pair), *loose],
    st.one_of(st.sampled_from([name for name in COMMANDS if name != "serve"]),
              WORD.filter(lambda word: word != "serve")),
    st.lists(OPTION_VALUE, max_size=3), st.lists(WORD, max_size=2))


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=WORDS)
def test_the_command_line_never_shows_a_traceback(words, cache_dir):
    assume("serve" not in words)  # would start a Jupyter server (its ports: BAD_ARGUMENTS)
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            status = main(["--cache-dir", str(cache_dir), *words])
        except SystemExit as exc:  # argparse: a usage error, or --help
            status = exc.code
    assert status in (0, 1, 2), (words, err.getvalue())
    if status == 2:
        assert err.getvalue().strip(), words


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(words=WORDS, quote=st.sampled_from(["", "'", '"']))
def test_the_line_magic_never_shows_a_traceback(ip, words, quote):
    line = " ".join(words) + quote
    if "--cache-dir" in line:
        return  # not a %taskcache option; the rest of the line is what is being tested
    with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()):
        try:
            ip.run_line_magic("taskcache", line)
        except UsageError:
            pass


def test_page_size_argument_bounds():
    from taskcache.commands import MAX_INT, positive_argument

    assert positive_argument("1") == 1 and positive_argument(str(MAX_INT)) == MAX_INT
    for bad in ("0", str(MAX_INT + 1), "x", ""):
        with pytest.raises(Exception, match="not a positive size"):
            positive_argument(bad)


def test_show_of_a_run_that_is_not_there_says_so(cache_dir):
    done = cli("--cache-dir", str(cache_dir), "show", "12")
    assert done.returncode == 2 and "no run #12" in done.stderr
    assert "Traceback" not in done.stderr
    assert Path(cache_dir).is_dir()
