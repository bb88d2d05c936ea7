"""Fault injection: real worker and web processes, a real redis-server,
kill -9, Redis outages, poison messages; outcomes counted in the fault
app's SQLite database (see faultapp.py)."""
