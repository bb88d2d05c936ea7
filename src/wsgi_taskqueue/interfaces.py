"""The protocols of wsgi-taskqueue, written down once.

Implementations say "see IQueueBackend" rather than repeating these duties.
"""
from zope.interface import Attribute, Interface


class IQueueBackend(Interface):
    """One named queue: where committed tasks wait to be dispatched.

    A backend moves opaque messages (bytes); it never decodes them. The
    life of a message: staged under a batch id in the transaction's vote,
    promoted to pending after commit (or discarded on abort), reserved by a
    consumer's thread into that thread's processing list (its slot), then
    acknowledged, scheduled for retry, or buried among the dead letters.
    Until one of those three happens the message stays in the processing
    list, so a consumer that dies loses nothing.
    """

    name = Attribute('The queue name, as registered.')
    max_task_size = Attribute(
        'Largest task accepted by ``taskqueue.add``, in bytes: URL, header '
        'names and values, and body together.')
    shared = Attribute(
        'True when other processes can reach the queue (a worker process '
        'may consume it); False for in-process queues.')

    dead_ttl = Attribute('Seconds a dead letter is kept.')
    dead_max = Attribute('How many dead letters the queue keeps at most.')
    keep_result = Attribute('Whether every task keeps its result.')
    result_ttl = Attribute('Seconds a result is kept.')
    result_max_size = Attribute('Bytes of a body a result keeps at most.')

    group = Attribute(
        'Queues whose groups are equal are staged and promoted together by '
        'the *_batches methods of any of them, in one round trip each (the '
        'queues of one Redis, or of one Redis Cluster).')

    def stage_batches(batch_id, batches):
        """Stage the messages of ``batches`` ({queue: messages}, queues of
        this group) as ``stage`` does, all or none."""

    def promote_batches(batch_id, queues, failed=None):
        """Promote ``batch_id`` in each of ``queues`` (of this group), as
        ``promote`` does.  With ``failed``, the backend may return before
        the promotion is confirmed; should it then turn out to have failed,
        it calls ``failed(error)`` (the caller retries)."""

    def enqueue_in_transaction(txn, batch_id, batches):
        """Called in the commit phase of ``txn``, before any vote, for
        ``batches`` ({queue: messages}, queues of this group): write them
        as pending through the app's own database transaction in ``txn``,
        so that they commit with its data or not at all, and return True;
        or return False, and they are staged in the vote as usual."""

    def enqueue_in_session(session, batches):
        """The same, where the transaction is the SQLAlchemy ``session``'s
        own (Flask-SQLAlchemy's ``db.session``), called as it begins to
        commit: write ``batches`` through it and return True, or return
        False."""

    def stage(batch_id, messages):
        """Store ``messages`` durably under ``batch_id``, invisible to
        consumers, but for those whose task name another task holds
        (``backends.names``: dropped and logged; ``discard`` frees the
        names the batch claimed).  Raise ``BackendUnavailable`` when that
        cannot be done in bounded time: the transaction's vote then says
        no."""

    def promote(batch_id):
        """Make a staged batch pending, atomically and in its order.

        Called after commit, so it must not raise for a batch that is
        already gone; transport errors may raise (the batch stays staged)."""

    def discard(batch_id):
        """Forget a staged batch (its transaction aborted)."""

    def reserve(slot, limit, timeout, done=(), recover=False):
        """Acknowledge ``done`` (as ``ack``, in the same round trip), then
        move up to ``limit`` pending messages (retries that fell due
        first) into the processing list ``slot`` and return them in queue
        order; wait up to ``timeout`` seconds when there are none.  Return
        an empty list on timeout or ``interrupt``.

        A slot is one thread's processing list: ``<consumer>#<n>`` (or the
        consumer's name alone).  A caller whose earlier reserve failed
        cannot know what that reserve moved; with ``recover`` every
        message of the slot but ``done`` first goes back to the head of
        pending.  Never re-send a reserve blindly.

        A message whose attempt already finished (done, retried or
        buried: the status record says so while it is kept) is a replay:
        it is not returned but buried (``bury_unusable``) without touching
        the record."""

    def interrupt(consumer):
        """Wake every waiting ``reserve`` of every slot of ``consumer``."""

    def ack(slot, done):
        """Remove finished messages from the processing list ``slot``;
        ``done`` holds (message, Report) pairs for the status log.  For
        each message that was still in the slot, in the same atomic step:
        the Report's ``result`` (if any) is kept ``result_ttl`` seconds
        for ``task_result``, and its ``then`` messages (completion
        callbacks) become pending; for one that was not, neither.
        Idempotent, as are stage, promote, discard, retry and bury: after
        a lost reply, sending them again is safe."""

    def retry(slot, message, new_message, due, report):
        """Replace ``message`` in the processing list by ``new_message``
        among the delayed ones, due at epoch time ``due``; atomically.
        ``report`` (a Report) goes to the status log.  Nothing happens if
        ``message`` is no longer in the slot."""

    def bury(slot, message, record, report=None):
        """Replace ``message`` in the processing list by the dead-letter
        ``record``; atomically.  ``report`` is None to leave the status log
        alone; its ``result`` and ``then`` are kept and queued in the same
        step, as ``ack`` does.  Nothing happens if ``message`` is no longer in the slot.
        The oldest dead letters beyond ``dead_max`` are dropped."""

    def bury_unusable(slot, message, reason, task=None, recorded=True):
        """Bury a message of ``slot`` that will not run (undecodable,
        forged, for another queue, too old, a replay, delivered too
        often), ``reason`` saying why, in one step whatever its shape;
        its status record says so unless not ``recorded``.  Shared by the
        backends (``QueueBase``)."""

    def dead_letter(message, task, status, error, attempt):
        """The dead-letter record of ``message`` (``task``: what it decoded
        to, or None), without Cookie and Authorization unless the queue
        keeps them.  Shared by the backends (``QueueBase``)."""

    def requeue_processing(consumer, max_deliveries=0):
        """Put every message of the slots of ``consumer`` (or of the one
        slot it names, ``w#1``) back at the head of the pending list, in
        order, counting one more unfinished delivery for each; one found
        unfinished ``max_deliveries`` times (0: no limit) goes to the dead
        letters instead (``bury_unusable``).  Return the numbers
        (requeued, dead-lettered)."""

    def acquire(consumer, token, ttl, info=None, gone_pid=None):
        """Take, or renew, the lease on the name ``consumer`` for ``ttl``
        seconds on behalf of ``token`` (one per running consumer), and
        keep ``info`` (a JSON-able dict: host, pid, concurrency) for
        ``consumers``.  Return False when another token holds a lease that
        has not expired, unless that holder is the process ``gone_pid`` of
        the host named in ``info``, which the caller knows has ended."""

    def release(consumer, token):
        """Give the lease up, if ``token`` holds it."""

    def sweep(grace, max_deliveries=0):
        """Recover what crashed processes left behind: requeue (as
        ``requeue_processing``) the slots of every consumer without a live
        lease, promote staged batches older than ``grace`` seconds, and
        forget dead letters older than ``dead_ttl``.  Return a dict:
        consumers (names recovered), requeued, dead (counts) and batches
        (ids promoted)."""

    def counts():
        """Return a dict: pending, delayed, dead, staged (ints) and
        processing ({consumer: int})."""

    def consumers():
        """The consumers holding (or lately holding) a lease: dicts with
        name, alive, heartbeat_age (seconds), in_flight and their info."""

    def task_status(task_id):
        """The status record of a task (see ``status.record``), or None
        when it is unknown or expired."""

    def task_result(task_id):
        """The stored text of the result of a finished task that kept
        one (``results.encode``), or None."""

    def tasks(state=None, start=0, count=50):
        """Status records, newest first, of tasks in ``state`` (any if
        None): ``count`` of them, skipping ``start``."""

    def throughput(minutes=15):
        """Outcomes per minute over the last ``minutes``: dicts with
        minute (epoch seconds) and counts of done, retried, dead."""

    def dead_letters(start=0, stop=-1):
        """Return dead-letter records, newest first, from index ``start``
        to ``stop`` inclusive (negative indices count from the oldest end,
        as in Python and LRANGE)."""

    def requeue_dead(record, message):
        """Remove ``record`` from the dead letters and make ``message``
        pending again, atomically.  Return False if ``record`` was gone."""

    def purge_dead():
        """Delete every dead letter; return how many there were."""

    def purge():
        """Delete every pending and delayed task (not those in flight, not
        the dead letters); return how many there were."""

    def cancel(task_id):
        """Remove the task ``task_id`` if it is pending or delayed
        (scheduled, or waiting for a retry), recording it ``cancelled``,
        and return 'cancelled'; return 'running' (and leave it alone) if
        a consumer holds it, None if it is in none of these states."""

    def job_status(job_id):
        """The status of job ``job_id`` (``backends/jobs.status_of``:
        state, counts, label, times), or None when it is unknown or its
        record expired."""

    def job_list(start=0, count=50):
        """The status of the queue's jobs, newest first: ``count`` of
        them, skipping ``start``."""

    def requeue_delayed():
        """Make every task waiting for a retry pending now; return how
        many."""

    def reset():
        """Delete everything of this queue: tasks in every state, dead
        letters, staged batches, leases, the status log."""

    def close():
        """Release connections and wake waiters; the backend is done."""
