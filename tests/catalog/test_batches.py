"""Writes of many runs at once: a sweep's claims in one transaction, completions of several
threads in one group commit, leases renewed together, hits read together. Every test runs
on SQLite and on a real PostgreSQL."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from taskcache import events
from taskcache.catalog import Catalog, summary
from taskcache.catalog.group_commit import GroupCommit
from taskcache.errors import LeaseLostError, RepeatedlyAbandonedError
from taskcache.records import ArtifactRecord, Claim, RunRecord, RunSpec


@pytest.fixture
def cat(catalog_url: str) -> Iterator[Catalog]:
    catalog = Catalog(catalog_url)
    yield catalog
    catalog.dispose()


def spec(fp: str, task: str = "sweep") -> RunSpec:
    return RunSpec(task=task, kind="function", fingerprint=fp, code_hash="code",
                   source="def f(x): ...", tags=("t",), env={"python": "3.11"})


def art(fp: str) -> ArtifactRecord:
    return ArtifactRecord(name="return", codec="json", relpath=f"sweep/{fp}.json", size=10,
                          checksum="c-" + fp, value_hash="v-" + fp, type_name="int")


def test_a_batch_claim_claims_new_points_and_joins_the_others(cat: Catalog) -> None:
    running = cat.claim(spec("b"), lease_seconds=60)
    done = cat.claim(spec("c"), lease_seconds=60)
    cat.complete(done, [art("c")], duration=1.0)
    seen: list[int] = []
    off = events.on("running", lambda run: seen.append(run.id))
    try:
        outcomes = cat.claim_or_join_many([spec("a"), spec("b"), spec("c"), spec("a")],
                                          lease_seconds=60)
    finally:
        off()
    new, joined, completed, twin = outcomes
    assert isinstance(new, Claim)
    assert isinstance(joined, RunRecord) and joined.id == running.run_id
    assert isinstance(completed, RunRecord) and completed.status == "completed"
    assert isinstance(twin, RunRecord) and twin.id == new.run_id  # waits for the first
    assert seen == [new.run_id]
    record = cat.get_run(new.run_id)
    assert record.status == "running" and record.tags == ("t",)
    assert [h.to_status for h in cat.history(new.run_id)] == ["pending", "running"]


def test_a_batch_claim_fails_expired_runs_and_gives_up_on_repeatedly_abandoned_ones(
        cat: Catalog) -> None:
    for _ in range(3):
        cat.claim(spec("dies"), lease_seconds=0.001)
        time.sleep(0.01)
        assert cat.expire_abandoned()
    expired = cat.claim(spec("late"), lease_seconds=0.001)
    time.sleep(0.01)
    dies, late = cat.claim_or_join_many([spec("dies"), spec("late")], lease_seconds=60,
                                        max_abandoned=3)
    assert isinstance(dies, RepeatedlyAbandonedError)
    assert isinstance(late, Claim)
    assert cat.get_run(expired.run_id).status == "failed"
    assert cat.history(expired.run_id)[-1].reason == "abandoned"


def test_completions_of_many_threads_share_transactions_and_keep_their_own_outcomes(
        cat: Catalog) -> None:
    claims = [cat.claim(spec(f"p{i}"), lease_seconds=60) for i in range(12)]
    thief = Claim(claims[5].run_id, "not-the-token", claims[5].lease_expires_at)
    batches: list[int] = []
    commit = cat._commit_changes

    def slow_commit(batch):  # a busy disk: the others arrive during the commit
        batches.append(len(batch))
        time.sleep(0.05)
        return commit(batch)

    cat._changes = GroupCommit(slow_commit)
    outcomes: dict[int, object] = {}

    def finish(i: int) -> None:
        try:
            mine = thief if i == 5 else claims[i]
            outcomes[i] = cat.complete(mine, [art(f"p{i}")], duration=float(i))
        except LeaseLostError as exc:
            outcomes[i] = exc

    threads = [threading.Thread(target=finish, args=(i,)) for i in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(batches) == 12 and len(batches) < 12  # grouped
    assert isinstance(outcomes[5], LeaseLostError)
    for i in set(range(12)) - {5}:
        record = outcomes[i]
        assert isinstance(record, RunRecord) and record.id == claims[i].run_id
        assert record.status == "completed" and record.duration == float(i)
        assert [a.relpath for a in record.artifacts] == [f"sweep/p{i}.json"]
    assert cat.get_run(claims[5].run_id).status == "running"
    with cat._db.read() as conn:  # the summary moved exactly as the rows did
        kept = sorted(r[:3] for r in summary.read(conn))
    assert kept == [("sweep", "completed", 11), ("sweep", "running", 1)]


def test_a_change_the_database_refuses_does_not_fail_the_rest_of_its_batch(
        cat: Catalog) -> None:
    from taskcache.catalog.catalog import _Change

    good = cat.claim(spec("good"), lease_seconds=60)
    bad = cat.claim(spec("bad"), lease_seconds=60)

    def change(claim: Claim, name: str | None) -> _Change:
        row = {"run_id": claim.run_id, "name": name, "codec": "json", "relpath": "r",
               "size": 1, "checksum": "c", "value_hash": "v", "type_name": "int",
               "shape": None, "rows": None, "columns": None, "repr": "",
               "restored_hash": None}
        return _Change(claim.run_id, "completed", None, claim.lease_token, {"duration": 1.0},
                       [row])

    results = cat._commit_changes([change(good, "return"), change(bad, None)])  # NOT NULL
    assert isinstance(results[0], RunRecord) and results[0].status == "completed"
    assert isinstance(results[1], Exception) and not isinstance(results[1], RunRecord)
    assert cat.get_run(bad.run_id).status == "running"
    assert cat.get_run(good.run_id).artifacts[0].name == "return"


def test_renewing_leases_together_says_which_were_lost(cat: Catalog) -> None:
    kept = cat.claim(spec("kept"), lease_seconds=60)
    finished = cat.claim(spec("finished"), lease_seconds=60)
    cat.complete(finished, [art("finished")], duration=1.0)
    taken = cat.claim(spec("taken"), lease_seconds=0.001)
    time.sleep(0.01)
    cat.expire_abandoned()
    renewed, lost = cat.renew_leases([kept, finished, taken], 600)
    assert renewed == {kept.run_id} and lost == {taken.run_id}
    assert cat.get_run(kept.run_id).lease_expires_at > kept.lease_expires_at


def test_the_hits_of_many_fingerprints_are_read_together(cat: Catalog) -> None:
    for fp in ("one", "two", "two"):
        claim = cat.claim(spec(fp), lease_seconds=60)
        cat.complete(claim, [art(fp)], duration=1.0)
    cat.claim(spec("running"), lease_seconds=60)
    found = cat.completed_runs_many(["two", "none", "one", "running"])
    assert set(found) == {"two", "none", "one", "running"}
    assert found["none"] == () and found["running"] == ()
    assert [r.id for r in found["two"]] == [r.id for r in cat.completed_runs("two")]
    assert len(found["two"]) == 2 and found["two"][0].id > found["two"][1].id
    assert found["one"][0].artifacts[0].relpath == "sweep/one.json"
