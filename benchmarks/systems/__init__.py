"""The systems the harness compares, one module per row.

A module ``systems.<name>`` says how to use one system, against the Redis
named by :func:`systems.server.url`; :mod:`systems.measure` does the
measuring, the same way for all. It defines what it can of:

``push(n)``
    enqueue jobs ``0 .. n-1`` through the system's own API: the enqueue
    and memory rows, and how a drain's jobs are queued.
``send(i, sent)``
    enqueue job ``i`` carrying its enqueue time ``sent``: latency rows.
``WORKER``
    a :class:`systems.workers.Worker`, how to start one worker process
    with one thread, whose jobs call :func:`systems.probe.record`: drain
    rows (and the server's commands and CPU per job), and with ``send``
    latency rows.
``burst(n)``
    make ``n`` jobs pending at once: with ``WORKER``, the scaling rows
    (drains by several worker processes started before the burst).
``job(first, n, closed)``, ``close(job)``
    ours only: commit a job of ``n`` tasks (jobs ``first`` onwards),
    ``closed`` with its last ones or not, whose on_complete is job
    ``first + n``, and return it; close it: the job completion rows.
``web(requests)``
    ours only: seconds per web request that adds 0, 1 and 10 tasks.
``MEASURES``
    the measurements the row takes part in, when not all that the above
    allow (a variant that differs from its system on one side only).
"""

#: Bare redis-py baselines: what the hardware and Redis allow at best.
FLOORS = ('floor', 'floor_pipelined')
#: The task queues we measure ourselves against.
PEERS = ('huey', 'huey_after_commit', 'dramatiq', 'dramatiq_prefetch100',
         'celery', 'rq')
#: Our queue and its variants.
OURS = ('ours', 'ours_txn100', 'ours_sqlite', 'ours_sqlite_txn100',
        'ours_prefetch1', 'ours_prefetch4', 'ours_prefetch100',
        'ours_delayed', 'ours_job', 'ours_web')
