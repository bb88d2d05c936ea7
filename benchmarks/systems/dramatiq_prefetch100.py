"""Dramatiq as in :mod:`systems.dramatiq`, but prefetching 100 messages.

Shows how much of Dramatiq's drain rate is its default prefetch of two
(``dramatiq_queue_prefetch``). Enqueueing is the same code path, so this
row has no enqueue measurement of its own.
"""
from __future__ import annotations

from systems import dramatiq

send = dramatiq.send
push = dramatiq.push
WORKER = dramatiq.worker(dramatiq_queue_prefetch='100')
MEASURES = ('drain', 'latency')
