"""The management app from an ini, served by ``wsgi-taskqueue serve`` in a
subprocess, over HTTP: hostile records and requests as a client sends
them, through waitress."""
from __future__ import annotations

import http.client
import subprocess
import sys
import time

import redis
import requests

from wsgi_taskqueue.management.app import SECURITY_HEADERS
from wsgi_taskqueue.testing import free_port

KEY = 'served-management-key-0123456789'
AUTH = {'X-API-Key': KEY}
INI = """\
[app:main]
use = egg:wsgi-taskqueue#management
api_key = {key}
max_body_size = 65536

[taskqueue]
type = redis
url = {url}

[server:main]
use = egg:wsgi-taskqueue#waitress
listen = 127.0.0.1:{port}
"""
BASE = 'wsgi-taskqueue:{default}:'


def write_ini(directory, redis_url, key=KEY):
    ini = directory / 'management.ini'
    ini.write_text(INI.format(key=key, url=redis_url, port=free_port()))
    return ini


def test_hostile_records_and_requests_over_http(deployment, redis_url):
    client = redis.Redis.from_url(redis_url)
    client.lpush(BASE + 'dead', b'<script>alert(1)</script>')
    client.hset(BASE + 'task:t', mapping={
        'id': 't', 'state': 'done', 'updated': 'noon', 'attempt': 'x'})
    client.zadd(BASE + 'tasks', {'t': time.time()})
    url = deployment.serve(write_ini(deployment.directory, redis_url))

    for path in ('/', '/panels', '/dead-letters', '/tasks', '/tasks/t',
                 '/status', '/nowhere'):
        response = requests.get(url + path, headers=AUTH, timeout=10)
        assert response.status_code == (404 if path == '/nowhere' else 200)
        for name, value in SECURITY_HEADERS:
            assert response.headers[name] == value
    panels = requests.get(url + '/panels', headers=AUTH, timeout=10).text
    assert 'malformed dead letter: not a dead-letter record' in panels
    assert '&lt;script&gt;' not in panels  # the record is not shown whole
    assert 'malformed status record: attempt is not a whole number; ' \
        'updated is not a number' in panels
    assert requests.get(url + '/tasks/t', headers=AUTH, timeout=10).json()[
        'problem'] == 'attempt is not a whole number; updated is not a number'

    # Bodies: too deep, too large (declared, and of unknown length).
    deep = requests.post(url + '/tasks', data=b'[' * 50_000, headers=AUTH,
                         timeout=10)
    assert (deep.status_code, deep.json()['error']) == (
        400, 'the body is nested too deeply: at most 10 levels of arrays and '
             'objects')
    large = requests.post(url + '/tasks', json={'url': '/x',
                                                'payload': 'x' * 70_000},
                          headers=AUTH, timeout=10)
    assert large.status_code == 413
    assert large.json()['error'] == ("the body is larger than 65536 bytes "
                                     "(the management app's max_body_size)")
    assert chunked_post(url, b'x' * 100_000) == 413
    # A sound task still goes in.
    response = requests.post(url + '/tasks', json={'url': '/x'},
                             headers=AUTH, timeout=10)
    assert response.status_code == 201
    assert client.llen(BASE + 'pending') == 1
    client.close()


def chunked_post(url: str, body: bytes) -> int:
    """POST ``body`` in 8 KiB chunks, as a client that does not say the
    length; the answer's status."""
    host, port = url.removeprefix('http://').split(':')
    connection = http.client.HTTPConnection(host, int(port), timeout=10)
    try:
        connection.request('POST', '/tasks', body=iter(
            body[i:i + 8192] for i in range(0, len(body), 8192)),
            headers={**AUTH, 'Transfer-Encoding': 'chunked'},
            encode_chunked=True)
        return connection.getresponse().status
    finally:
        connection.close()


def test_a_short_key_in_the_ini_stops_the_server_at_once(tmp_path,
                                                         redis_url):
    ini = write_ini(tmp_path, redis_url, key='tooshort')
    result = subprocess.run(
        [sys.executable, '-m', 'wsgi_taskqueue', 'serve', str(ini)],
        capture_output=True, text=True, timeout=60, stdin=subprocess.DEVNULL)
    assert result.returncode != 0
    assert (f"file {ini}, key 'api_key': the management API key must be at "
            f"least 16 characters long, not 8") in result.stderr
