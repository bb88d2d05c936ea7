"""Ours, draining with a consumer that reserves one task per round trip
(``prefetch = 1``): no task ever waits behind another of its thread; the
default was this before ``prefetch = auto``.  Enqueueing is
:mod:`systems.ours`'s, so this row only drains."""
from __future__ import annotations

from systems import ours

push = ours.push
WORKER = ours.worker(prefetch=1)
MEASURES = ('drain',)
