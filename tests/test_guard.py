"""Views reachable only as tasks: the helper and the Pyramid predicate."""
import transaction
import webtest
from pyramid.config import Configurator

from wsgi_taskqueue import current_task, is_task, taskqueue
from wsgi_taskqueue.dispatch import Dispatcher
from wsgi_taskqueue.middleware import TaskQueueMiddleware


def make_app():
    with Configurator() as config:
        config.include('wsgi_taskqueue.guard')
        config.add_route('work', '/work')
        config.add_view(lambda request: {'task': current_task(request).id},
                        route_name='work', renderer='json', task=True)
        return TaskQueueMiddleware(config.make_wsgi_app())


def test_a_task_only_view_is_not_found_from_the_network():
    app = webtest.TestApp(make_app())
    app.get('/work', headers={'X-Task-Id': 'forged'}, status=404)


def test_a_task_only_view_answers_a_dispatched_task(local_queue):
    taskqueue.add('/work')
    transaction.commit()
    [message] = local_queue.reserve('t', 1, 0)
    task = local_queue.codec.decode(message)
    result = Dispatcher(make_app())(task)
    assert result.status == '200 OK'


def test_is_task_takes_an_environ_or_a_request():
    assert not is_task({})
    assert not is_task(webtest.TestRequest.blank('/'))
