"""The synchronous queue: no storage, tasks run right after the commit.

For tests, scripts and development: ``commit()`` returns once the
transaction's tasks have been dispatched in the committing process,
through the same dispatcher and outcome table as a consumer's (a retry
runs at once, up to ``retry_max_count``; then the task is dead-lettered).
They run in a thread of their own, joined before the commit returns, so
that each task's own transaction is not the committing one's.

The app is the one the ``taskqueue`` filter wraps (it hands itself to the
sync queues of its ini file), or ``app=`` given programmatically.
"""
from __future__ import annotations

import logging
import threading

from ..consumer import Consumer
from .base import peek
from .local import LocalQueue

__all__ = ['SyncQueue', 'drain']

log = logging.getLogger(__name__)


class SyncQueue(LocalQueue):
    """See the module docstring and IQueueBackend."""

    def __init__(self, name: str = 'default', *, app=None,
                 retry_max_count: int = 10, **options):
        super().__init__(name, **options)
        self.app = app
        self.retry_max_count = retry_max_count

    def promote_batches(self, batch_id, queues, failed=None):
        super().promote_batches(batch_id, queues, failed)
        if self.app is None:
            log.warning('sync queue %r has no app to dispatch to: its tasks '
                        'wait (put the taskqueue filter in front of the app, '
                        'or pass app=)', self.name)
            return
        runner = threading.Thread(target=drain, args=(self, self.app),
                                  kwargs={'retry_max_count':
                                          self.retry_max_count},
                                  name=f'wsgi-taskqueue sync {self.name}')
        runner.start()
        runner.join()


def drain(queue, app, retry_max_count: int = 10) -> list[str]:
    """Dispatch what ``queue`` (registered, in-process) holds pending into
    ``app`` until nothing is left, retries included, as a consumer would;
    return the ids of the tasks dispatched, in order."""
    consumer = Consumer(app, queue=queue.name, name='sync',
                        retry_max_count=retry_max_count)
    slot = f'sync#{threading.get_ident()}'
    ran = []
    while True:
        messages = queue.reserve(slot, 100, 0)
        if not messages:
            # Retries run at once.
            if not queue.requeue_delayed():
                return ran
            continue
        done = []
        for message in messages:
            task = peek(message)
            if task is not None:
                ran.append(task.id)
            report = consumer.process(message, slot)
            if report is not None:
                done.append((message, report))
        queue.ack(slot, done)
