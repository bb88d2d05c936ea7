"""Ours, enqueueing 100 tasks per transaction (one commit per 100 jobs)."""
from __future__ import annotations

from systems import ours

push = ours.transactions(100)
