import wsgi_taskqueue

#: What DESIGN.md's contract promises users can import.
CONTRACT = ['taskqueue', 'configure', 'register_queue', 'LocalQueue',
            'RedisQueue', 'Consumer']


def test_every_name_in_all_exists():
    for name in wsgi_taskqueue.__all__:
        assert hasattr(wsgi_taskqueue, name), name


def test_the_contract_is_public():
    assert set(CONTRACT) <= set(wsgi_taskqueue.__all__)
    assert callable(wsgi_taskqueue.taskqueue.add)
