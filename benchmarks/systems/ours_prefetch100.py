"""Ours, draining with a consumer that reserves up to 100 tasks per round
trip (``prefetch = 100``), as the best peer drain row prefetches 100.
Enqueueing is :mod:`systems.ours`'s, so this row only drains."""
from __future__ import annotations

from systems import ours

push = ours.push
WORKER = ours.worker(prefetch=100)
MEASURES = ('drain',)
