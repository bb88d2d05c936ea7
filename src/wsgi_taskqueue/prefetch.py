"""How many tasks a consumer thread reserves at once.

Reserving several tasks per round trip is what makes a consumer fast: at
one, the thread waits for Redis about two thirds of its time.  But what a
thread reserved waits in its processing list behind the task it runs, and
no other thread or process can take it.  ``prefetch = auto`` (the default)
weighs the two per thread: it starts at one task, doubles while the tasks
run short, so that a whole batch is expected to take at most
``BATCH_SECONDS``, and falls back to one as soon as a batch takes longer;
the tasks of that batch not started yet are then handed back to the head
of the queue with the next reserve, for any thread to take.  So a task
reserved behind others waits at most ``BATCH_SECONDS`` plus the one task
that ran long.  A number instead of ``auto`` reserves that many, always.
"""
from __future__ import annotations

import threading
import time

__all__ = ['AUTO', 'Prefetch', 'TaskBudget', 'prefetch_setting']

#: The setting's value for an adaptive prefetch.
AUTO = 'auto'
#: The most tasks an adaptive prefetch reserves at once.
MOST = 32
#: How long the tasks of one batch are expected to take at most.
BATCH_SECONDS = 0.02


def prefetch_setting(value) -> int | str:
    """``auto``, or a number of tasks of at least 1."""
    if isinstance(value, str) and value.strip().lower() == AUTO:
        return AUTO
    try:
        if type(value) is not int and not isinstance(value, str):
            raise TypeError
        number = int(value)
    except (TypeError, ValueError):
        raise ValueError(f'must be "auto" or a number of tasks, not '
                         f'{value!r}'[:200]) from None
    if number < 1:
        raise ValueError(f'must be "auto" or at least 1, not {number}')
    return number


class Prefetch:
    """One thread's prefetch: how many tasks to reserve next, and whether
    the batch being run has taken too long to go on with."""

    __slots__ = ('adaptive', 'limit', '_started', '_longest')

    def __init__(self, setting: int | str):
        setting = prefetch_setting(setting)
        self.adaptive = setting == AUTO
        self.limit = 1 if self.adaptive else setting
        self._started = 0.0
        self._longest = 0.0

    def reserved(self) -> None:
        """A batch was reserved: its clock starts."""
        self._started = time.perf_counter()
        self._longest = 0.0

    def overran(self, task_started: float) -> bool:
        """After a task that started at ``task_started`` (perf_counter):
        True when the batch has run past ``BATCH_SECONDS``, so that the
        rest of it should go back to the queue (adaptive only)."""
        now = time.perf_counter()
        self._longest = max(self._longest, now - task_started)
        return self.adaptive and now - self._started > BATCH_SECONDS

    def finished(self, overran: bool) -> None:
        """The batch is over: size the next one."""
        if not self.adaptive:
            return
        if overran:
            self.limit = 1
            return
        fits = int(BATCH_SECONDS / self._longest) if self._longest else MOST
        self.limit = max(1, min(MOST, 2 * self.limit, fits))


class TaskBudget:
    """How many more tasks the consumers of a worker may take
    (``--max-tasks``), handed out before each reserve so that none takes
    more than is left."""

    def __init__(self, tasks: int):
        self.left = tasks
        self._lock = threading.Lock()

    def take(self, wanted: int) -> int:
        with self._lock:
            granted = min(wanted, self.left)
            self.left -= granted
            return granted

    def give_back(self, unused: int) -> None:
        with self._lock:
            self.left += unused
