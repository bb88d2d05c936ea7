"""The examples of README.rst and docs/getting-started.rst, run as a
reader runs them: copied into files, served (``flask run``,
``wsgi-taskqueue serve``) in a subprocess, asked over HTTP."""
import pathlib
import re
import sqlite3
import sys
import textwrap

import requests

from wsgi_taskqueue.testing import free_port

from .harness import Process, _answers

ROOT = pathlib.Path(__file__).resolve().parents[2]


def code_blocks(path: pathlib.Path, language: str) -> list[str]:
    text = path.read_text()
    return [textwrap.dedent(block) for block in re.findall(
        rf'\.\. code-block:: {language}\n\n((?:    .*\n|\n)+)', text)]


def start(deployment, label: str, argv: list[str]) -> None:
    process = Process(label, deployment.directory / label, title=label,
                      log_path=deployment.directory / f'{label}.log',
                      argv=argv, pythonpath=[str(deployment.directory)])
    deployment.processes.append(process)


def test_the_readme_example_under_flask_run(deployment):
    [example] = code_blocks(ROOT / 'README.rst', 'python')
    (deployment.directory / 'notes.py').write_text(example)
    port = free_port()
    start(deployment, 'flask run', [sys.executable, '-m', 'flask', '--app',
                                    'notes', 'run', '--port', str(port)])
    url = f'http://127.0.0.1:{port}'
    deployment.wait_until(lambda: _answers(url), 'flask run to answer')
    response = requests.post(f'{url}/notes', data={'text': 'hello task queue'},
                             timeout=10)
    assert response.json() == {'id': 1}
    database = deployment.directory / 'instance' / 'notes.sqlite'

    def words():
        with sqlite3.connect(database, timeout=10) as db:
            return db.execute('SELECT words FROM note').fetchall()
    deployment.wait_until(lambda: words() == [(3,)], 'the task to count')


def test_the_first_app_of_getting_started(deployment):
    page = ROOT / 'docs' / 'getting-started.rst'
    [app] = code_blocks(page, 'python')
    [ini] = code_blocks(page, 'ini')
    port = free_port()
    (deployment.directory / 'hello.py').write_text(app)
    (deployment.directory / 'hello.ini').write_text(
        ini.replace('127.0.0.1:8080', f'127.0.0.1:{port}'))
    start(deployment, 'serve', [sys.executable, '-m', 'wsgi_taskqueue',
                                'serve', 'hello.ini'])
    url = f'http://127.0.0.1:{port}'
    deployment.wait_until(lambda: _answers(url), 'serve to answer')
    assert requests.get(f'{url}/hello?name=ann', timeout=10).text == 'queued\n'
    log = deployment.directory / 'serve.log'
    deployment.wait_until(lambda: 'hello, ann' in log.read_text(),
                          'the task to greet')
