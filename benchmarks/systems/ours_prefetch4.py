"""Ours, draining with a consumer that reserves up to 4 tasks per round
trip (``prefetch = 4``): a task waits behind at most 3 others of its
thread.  Enqueueing is :mod:`systems.ours`'s, so this row only drains."""
from __future__ import annotations

from systems import ours

push = ours.push
WORKER = ours.worker(prefetch=4)
MEASURES = ('drain',)
