"""Fixtures of the fault tests: a Cluster of fault-app processes on the
suite's Redis, which is running again after each test whatever the test
did to it."""
import pytest

from .cluster import Cluster, WaitFailed


@pytest.fixture
def cluster(tmp_path, redis_server, redis_url):
    cluster = Cluster(tmp_path, redis_url)
    try:
        yield cluster
    finally:
        if redis_server.process is None:
            redis_server.start()
        cluster.stop()


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the output of its processes (a WaitFailed has
    it in its message already)."""
    report = (yield).get_result()
    cluster = getattr(item, 'funcargs', {}).get('cluster')
    if (report.failed and cluster is not None
            and not call.excinfo.errisinstance(WaitFailed)):
        report.sections.append(('fault-test processes', cluster.report()))
