"""Ini sections: the collective.taskqueue keys, and errors that say where."""
import os
import socket
import textwrap

import pytest

import wsgi_taskqueue
from wsgi_taskqueue import settings
from wsgi_taskqueue.consumer import default_consumer_name
from wsgi_taskqueue.errors import ConfigurationError
from wsgi_taskqueue.registry import queue_names


@pytest.fixture
def ini(tmp_path):
    def write(text):
        path = tmp_path / 'app.ini'
        path.write_text(textwrap.dedent(text))
        return str(path)
    return write


def test_queues_and_consumers_are_read_with_their_defaults(ini, redis_url):
    path = ini(f"""
        [DEFAULT]
        debug = true

        [app:main]
        use = egg:wsgi-taskqueue#demo

        [taskqueue]

        [taskqueue:mailhost]
        type = redis
        url = {redis_url}
        secret = new old

        [taskqueue-server]
        name = instance1
        concurrent_limit = 3

        [taskqueue-server:mail]
        queue = mailhost
        retry_max_count = 2
    """)
    configuration = wsgi_taskqueue.configure(path)
    default = wsgi_taskqueue.get_queue('default')
    mail = wsgi_taskqueue.get_queue('mailhost')
    assert isinstance(default, wsgi_taskqueue.LocalQueue)
    assert isinstance(mail, wsgi_taskqueue.RedisQueue)
    assert mail.codec.keys == [b'new', b'old']
    consumers = configuration.build_consumers(object())
    assert [(c.name, c.queue, c.concurrent_limit, c.policy.max_count)
            for c in consumers] == [('instance1', 'default', 3, 10),
                                    (default_consumer_name('mail'),
                                     'mailhost', 1, 2)]


def test_unnamed_consumers_get_names_unique_to_their_process(ini):
    path = ini('[taskqueue]\n[taskqueue-server]\n')
    [consumer] = wsgi_taskqueue.configure(path).consumers
    assert consumer.settings['name'] == (
        f'default@{socket.gethostname()}:{os.getpid()}')


def test_configuring_the_same_file_twice_keeps_the_same_queues(ini):
    path = ini('[taskqueue]\n')
    first = wsgi_taskqueue.configure(path)
    queue = wsgi_taskqueue.get_queue()
    assert wsgi_taskqueue.configure(path) is first
    assert wsgi_taskqueue.get_queue() is queue


def test_the_seed_connection_keys_build_a_redis_queue(ini, redis_server):
    path = ini(f"""
        [taskqueue]
        type = redis
        host = 127.0.0.1
        port = {redis_server.port}
        db = 3
        socket_timeout = 2.5
    """)
    wsgi_taskqueue.configure(path)
    queue = wsgi_taskqueue.get_queue()
    assert queue.where == f'127.0.0.1:{redis_server.port}/3'
    assert queue.pool.connection_kwargs['db'] == 3
    assert queue.pool.connection_kwargs['socket_timeout'] == 2.5


def test_here_is_interpolated(ini, tmp_path):
    path = ini("""
        [taskqueue]
        type = redis
        unix_socket_path = %(here)s/redis.sock
    """)
    wsgi_taskqueue.configure(path)
    assert wsgi_taskqueue.get_queue().where == f'{tmp_path}/redis.sock/0'


def test_a_queue_class_by_dotted_name(ini):
    path = ini("""
        [taskqueue:custom]
        type = wsgi_taskqueue.backends.local.LocalQueue
    """)
    wsgi_taskqueue.configure(path)
    assert isinstance(wsgi_taskqueue.get_queue('custom'),
                      wsgi_taskqueue.LocalQueue)


@pytest.mark.parametrize('text, section, key, message', [
    ('[taskqueue]\ntype = rabbit\n', 'taskqueue', 'type', 'unknown queue type'),
    ('[taskqueue]\ntype = no.such.Module\n', 'taskqueue', 'type',
     'cannot import'),
    ('[taskqueue]\nhost = x\n', 'taskqueue', 'host', 'unknown key'),
    ('[taskqueue]\ntype = redis\nsecrets = x\n', 'taskqueue', 'secrets',
     'known keys: .*secret,'),
    ('[taskqueue]\ntype = redis\nport = many\n', 'taskqueue', 'port',
     'bad value'),
    ('[taskqueue]\ntype = redis\nport = 0\n', 'taskqueue', 'port',
     'at least 1'),
    ('[taskqueue]\nmax_task_size = -1\n', 'taskqueue', 'max_task_size',
     'at least 0'),
    ('[taskqueue]\nqueue = a b\n', 'taskqueue', 'queue', 'without spaces'),
    ('[taskqueue]\n[taskqueue:default]\n', 'taskqueue:default', 'queue',
     'defined twice'),
    ('[taskqueue]\n[taskqueue-server]\nqueue = mail\n', 'taskqueue-server',
     'queue', "undefined queue 'mail'"),
    ('[taskqueue]\n[taskqueue-server]\nconcurrent_limit = 0\n',
     'taskqueue-server', 'concurrent_limit', 'at least 1'),
    ('[taskqueue]\n[taskqueue-server]\nretry_delay = soon\n',
     'taskqueue-server', 'retry_delay', 'bad value'),
    ('[taskqueue]\n[taskqueue-server]\nthreads = 4\n',
     'taskqueue-server', 'threads', 'unknown key'),
    ('[taskqueue]\n[taskqueue-server:a]\nname = w\n[taskqueue-server:b]\n'
     'name = w\n', 'taskqueue-server:b', 'name', "two consumers are named 'w'"),
])
def test_errors_name_the_file_section_and_key(ini, text, section, key,
                                              message):
    path = ini(text)
    with pytest.raises(ConfigurationError, match=message) as info:
        wsgi_taskqueue.configure(path)
    error = info.value
    assert (error.filename, error.section, error.key) == (path, section, key)
    assert f'file {path}, section [{section}], key {key!r}' in str(error)
    assert queue_names() == []  # nothing half-registered


def test_a_missing_file_is_named(tmp_path):
    missing = str(tmp_path / 'nope.ini')
    with pytest.raises(ConfigurationError, match=f'file {missing}: no such'):
        wsgi_taskqueue.configure(missing)


def test_a_broken_ini_is_named(ini):
    path = ini('[taskqueue\ntype = local\n')
    with pytest.raises(ConfigurationError, match=f'file {path}'):
        wsgi_taskqueue.configure(path)


def test_filter_settings_are_checked():
    assert settings.filter_settings({'manage_transaction': 'yes'}) == {
        'manage_transaction': True}
    with pytest.raises(ConfigurationError, match="key 'manage_transaction'"):
        settings.filter_settings({'manage_transaction': 'perhaps'})
    with pytest.raises(ConfigurationError, match="key 'colour'"):
        settings.filter_settings({'colour': 'blue'})


def test_a_bad_credentials_mode_names_the_section(ini):
    path = ini('[taskqueue]\ncredentials = all\n')
    with pytest.raises(ConfigurationError,
                       match=r'section \[taskqueue\].*credentials must be'):
        wsgi_taskqueue.configure(path)
