"""Case 8: what checking the files a run read costs a hit (issue 12): a @task hit that
recorded 100 unchanged files against the same hit with file tracking off."""

from __future__ import annotations

import statistics
import time

from benchmarks.harness import CaseResult, Context, fmt_time, interleaved, stats, target

NAME = "file_hit"
TITLE = "hit with 100 recorded input files (stat only) vs none"
NEEDS: tuple[str, ...] = ()

N_FILES = 100


# Module level and self-contained: taskcache hashes its source on every call.
def bench_read_all(paths):
    total = 0
    for path in paths:
        with open(path, "rb") as f:
            total += len(f.read())
    return total


def run(ctx: Context) -> CaseResult:
    """Both variants take the same 100 paths (same hashing); one records the files and
    checks them on every hit, the other was told not to (track_files=False)."""
    import taskcache

    folder = ctx.tmp / "file-hit-inputs"
    folder.mkdir()
    paths = []
    for i in range(N_FILES):
        path = folder / f"part-{i:03d}.csv"
        path.write_text(f"x,y\n{i},{i * i}\n" * 20)
        paths.append(str(path))
    # files changed within 2 s of being recorded are re-read on every check (the racily
    # clean rule); let them settle so the hits measure the stat-only path
    time.sleep(2.2)
    tracked = taskcache.task(bench_read_all)
    untracked = taskcache.task(track_files=False, name="bench_read_all_untracked")(bench_read_all)
    expected = bench_read_all(paths)
    assert tracked(paths) == expected and untracked(paths) == expected  # the misses
    run_ = tracked.lookup(paths)
    assert run_ is not None
    recorded = [f for f in run_.record.files if f.role == "read"]
    assert len(recorded) == N_FILES and not any(f.racy for f in recorded), \
        "the 100 files should be recorded, settled"
    assert not untracked.lookup(paths).record.files
    variants = {f"@task hit, {N_FILES} recorded files checked": lambda: tracked(paths),
                "@task hit, files not tracked": lambda: untracked(paths)}
    timings = interleaved(variants, ctx.sizes.tiny_rounds, max(ctx.sizes.tiny_per_round // 4, 10))
    med = {label: statistics.median(samples) for label, samples in timings.items()}
    rows = [stats(label, samples) for label, samples in timings.items()]
    with_files, without = med.values()
    extra = with_files - without
    return CaseResult(
        rows=rows,
        ratios=[f"checking {N_FILES} unchanged files adds {fmt_time(extra)} per hit "
                f"({fmt_time(extra / N_FILES)} per file)"],
        notes=["files settled (> 2 s old) before the recording run, so a check is one "
               "os.stat per file; the same 100 paths are hashed as the argument in both"],
        targets=[target(f"hit with {N_FILES} unchanged recorded files: at most 1 ms more",
                        f"+{fmt_time(extra)}", extra <= 1e-3, extra)],
    )
