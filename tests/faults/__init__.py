"""Fault injection: real worker and web processes, a real redis-server
(AOF on, fsync always), kill -9, Redis outages, lost replies, poison
messages; outcomes counted in the fault app's SQLite ledger.

faultapp.py          the app the processes serve (enqueue view, task view
                     that blocks / works / dies on request, a resource that
                     SIGKILLs the web process between vote and promotion)
                     and its Ledger (added, committed, starts, runs + pid)
fault.ini.in         the ini template of every process
cluster.py           Cluster: functional.harness's Deployment with
                     processes a test may kill, per-start logs, Redis
                     inspection (settled, lease_expired), cpu_seconds
proxy.py             a TCP proxy in front of Redis that loses one chosen
                     reply (the command is applied, the client never hears)
test_consumer_death  kill -9 mid-task: redelivery by a sweep, by the
                     restarted worker; the poison pill (max_deliveries)
test_web_crash       kill -9 of the web process between vote and promotion
test_redis_outage    Redis stopped / killed during commits and consumption;
                     CPU of a worker while Redis is down
test_lost_replies    applied commands whose replies were lost
test_messages        garbage, unsigned, forged, tampered messages
test_worker_process  one name, one process; SIGTERM; SIGUSR2 / SIGCONT
test_soak            10,000 tasks, three workers, random kill -9s
"""
