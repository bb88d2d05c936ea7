"""Fixtures of the functional tests: example apps served in subprocesses."""
import pytest

from .harness import Deployment, WaitFailed


@pytest.fixture
def deployment(tmp_path):
    """Serve examples for one test; every process is stopped after it."""
    deployment = Deployment(tmp_path)
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(params=['local', 'redis', 'sqlite'])
def serve(request, deployment):
    """Serve an example folder's ``local.ini``, then its ``redis.ini``
    (on the test Redis), then its ``sqlite.ini`` (the queue in a file of
    the test's own): ``url = serve('plain')``."""
    redis_url = (request.getfixturevalue('redis_url')
                 if request.param == 'redis' else None)

    def serve_folder(folder: str) -> str:
        return deployment.serve(
            deployment.ini(f'{folder}/{request.param}.ini', redis_url))
    return serve_folder


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    """A failing test shows the output of its processes (a WaitFailed has
    it in its message already)."""
    report = (yield).get_result()
    deployment = getattr(item, 'funcargs', {}).get('deployment')
    if (report.failed and deployment is not None
            and not call.excinfo.errisinstance(WaitFailed)):
        report.sections.append(('wsgi-taskqueue processes',
                                deployment.report()))
