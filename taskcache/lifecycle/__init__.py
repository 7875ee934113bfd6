"""The run lifecycle shared by ``@task`` and ``%%task``: ``runner`` (lookup -> restore, or
claim -> save; the process-wide default runner), ``heartbeat`` (lease renewal), ``hits``
(batched hit counts), ``failures`` (recording failures the catalog could not take yet),
``restore`` (how a hit loads and verifies its outputs), ``environment`` (what a run records
about where it ran), ``explain`` (why a run missed) and
``maintenance`` (verify and gc).

Where runs execute: ``jobs`` (one miss, claimed, run and recorded wherever it is sent),
``executors`` (threads, worker processes, Dask, any Executor), ``sweeps`` (retries,
futures, cancellation for ``f.map``/``f.submit``) and ``progress`` (the counts a bar shows)."""
