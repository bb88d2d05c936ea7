"""Fixtures of the functional tests: example apps served in subprocesses."""
import pytest

from .harness import Deployment


@pytest.fixture
def deployment(tmp_path):
    """Serve examples for one test; every process is stopped after it."""
    deployment = Deployment(tmp_path)
    try:
        yield deployment
    finally:
        deployment.stop()


@pytest.fixture(params=['local', 'redis'])
def serve(request, deployment):
    """Serve an example folder's ``local.ini``, then its ``redis.ini``
    (on the test Redis): ``url = serve('plain')``."""
    redis_url = (request.getfixturevalue('redis_url')
                 if request.param == 'redis' else None)

    def serve(folder: str) -> str:
        return deployment.serve(
            deployment.ini(f'{folder}/{request.param}.ini', redis_url))
    return serve
