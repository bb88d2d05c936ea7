"""Fixtures of the fault tests: a Cluster of fault-app processes on the
suite's Redis, which is running again after each test whatever the test
did to it; or, in modules that parametrize ``backend``, on a SQLite file
or the suite's PostgreSQL or MariaDB."""
import pytest

from .cluster import Cluster, WaitFailed

#: For ``pytestmark = BACKENDS`` in a module whose tests hold for every
#: shared queue.
BACKENDS = pytest.mark.parametrize(
    'backend', ['redis', 'sqlite', 'postgresql', 'mariadb'], indirect=True)


@pytest.fixture
def backend(request):
    """The queue the cluster's processes share: Redis unless the module
    parametrizes it (BACKENDS)."""
    return getattr(request, 'param', 'redis')


@pytest.fixture
def cluster(tmp_path, backend, request):
    if backend == 'redis':
        url = request.getfixturevalue('redis_url')
    elif backend == 'sqlite':
        url = f'sqlite:///{tmp_path}/tasks.sqlite'
    else:
        from conftest import empty_sql_queue
        url = request.getfixturevalue(f'{backend}_url')
        empty_sql_queue(url).close()
    cluster = Cluster(tmp_path, url)
    try:
        yield cluster
    finally:
        if backend == 'redis':
            redis_server = request.getfixturevalue('redis_server')
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
