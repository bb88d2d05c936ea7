"""pyramid_tm, whatever transaction manager it is configured with."""
import pytest
import webtest
from pyramid.config import Configurator

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.middleware import TaskQueueMiddleware


def make_app(**settings):
    def enqueue(request):
        taskqueue.add('/task')
        if request.params.get('fail'):
            raise RuntimeError('view failed')
        return {'queued': True}

    with Configurator(settings=settings) as config:
        config.include('pyramid_tm')
        config.add_route('enqueue', '/enqueue')
        config.add_view(enqueue, route_name='enqueue', renderer='json')
        return TaskQueueMiddleware(config.make_wsgi_app())


@pytest.mark.parametrize('settings', [
    {},  # pyramid_tm's default: the thread-local manager
    {'tm.manager_hook': 'pyramid_tm.explicit_manager'},  # the starter's
])
def test_tasks_join_the_transaction_pyramid_tm_manages(local_queue,
                                                       settings):
    app = webtest.TestApp(make_app(**settings))
    app.get('/enqueue')
    assert len(local_queue.reserve('c', 5, 0)) == 1
    with pytest.raises(RuntimeError):
        app.get('/enqueue', params={'fail': '1'})
    assert local_queue.reserve('c', 5, 0) == []
