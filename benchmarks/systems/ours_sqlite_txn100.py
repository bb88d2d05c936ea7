"""Ours as in :mod:`systems.ours_sqlite`, 100 tasks per transaction."""
from __future__ import annotations

from systems import ours, ours_sqlite

push = ours.transactions(100, ours_sqlite.write_row)
