"""The systems the harness compares, one module each.

Every module ``systems.<name>`` exposes the same three functions, all
against the Redis named by :func:`systems.measure.redis_url`:

``enqueue(n) -> float``
    seconds the system's own per-job enqueue API takes for ``n`` no-op jobs
    (no worker running).
``drain(n) -> (float, int)``
    enqueue ``n`` no-op jobs, then start one worker process with one thread;
    seconds from the first job to the last job, as stamped inside the jobs,
    and how many job executions there were (``n`` when each ran once).
``latency(m, idle) -> list[float]``
    with a worker running, enqueue ``m`` jobs one at a time, each ``idle``
    seconds after the previous one ran; milliseconds from enqueue to job
    start. A module without this function gets no latency rows.

:mod:`systems.measure` implements the three for any system that can enqueue
one job and start a worker; :mod:`systems.probe` is what the jobs call.
Our own queue plugs in as ``systems/ours.py`` with the same functions.
"""

#: Bare redis-py baselines: what the hardware and Redis allow at best.
FLOORS = ('floor', 'floor_pipelined')
#: The task queues we measure ourselves against.
PEERS = ('huey', 'dramatiq', 'dramatiq_prefetch100', 'celery', 'rq')
#: Our queue; optional until its module exists.
OURS = 'ours'
