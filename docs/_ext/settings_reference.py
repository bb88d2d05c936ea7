"""``.. taskqueue-settings:: TABLE``: the keys of one of config.py's
settings tables, with their defaults and meanings, and how a key is
written in each configuration form (ini, zope.conf, Flask, Pyramid).

Generated from ``wsgi_taskqueue.config``'s tables and the descriptions of
``wsgi_taskqueue.settings_help``, so the reference cannot drift from what
the loader accepts: a key without a description, or a
description of no key, is a warning (an error under ``-W``).
"""
from __future__ import annotations

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.util import logging

from wsgi_taskqueue import settings_help

log = logging.getLogger(__name__)

#: How a key of each table is written, per form.
FORMS = {
    'queue': [
        ('ini', '``[taskqueue:NAME]`` then ``KEY = VALUE``'),
        ('zope.conf', '``<taskqueue NAME>`` then ``KEY VALUE``'),
        ('Flask', "``TASKQUEUE_QUEUES = {'NAME': {'KEY': VALUE}}``"),
        ('Pyramid', '``taskqueue.queue.NAME.KEY = VALUE``'),
    ],
    'consumer': [
        ('ini', '``[taskqueue-server:NAME]`` then ``KEY = VALUE``'),
        ('zope.conf', '``<taskqueue-server NAME>`` then ``KEY VALUE``'),
        ('Flask', "``TASKQUEUE_CONSUMERS = {'NAME': {'KEY': VALUE}}``"),
        ('Pyramid', '``taskqueue.consumer.NAME.KEY = VALUE``'),
    ],
}
FORMS['redis'] = FORMS['queue']
FORMS['filter'] = [('ini', '``[filter:taskqueue]`` then ``KEY = VALUE``')]


def _default(value) -> str:
    if value is None or value == []:
        return '(none)'
    return f'``{value}``'


def rows(table: str) -> list[tuple[str, str, str]]:
    """(key, default, meaning) of each key of ``table``, in the table's
    order; warns of keys and descriptions that do not match."""
    settings = settings_help.SETTINGS_TABLES[table]
    described = settings_help.SETTINGS_HELP[table]
    for key in sorted(set(settings) - set(described)):
        log.warning('settings_help.SETTINGS_HELP[%r] does not describe %r',
                    table, key)
    for key in sorted(set(described) - set(settings)):
        log.warning('settings_help.SETTINGS_HELP[%r] describes %r, which is no '
                    'key of the table', table, key)
    result = []
    for key, (_, default) in settings.items():
        meaning, shown = described.get(key, ('', None))
        result.append((f'``{key}``', shown or _default(default), meaning))
    return result


class SettingsDirective(Directive):
    required_arguments = 1

    def run(self):
        table = self.arguments[0]
        if table not in settings_help.SETTINGS_TABLES:
            raise self.error(f'unknown settings table {table!r}; known: '
                             f'{", ".join(settings_help.SETTINGS_TABLES)}')
        lines = ['.. list-table::', '   :header-rows: 1',
                 '   :widths: 20 20 60', '',
                 '   * - key', '     - default', '     - meaning']
        for key, default, meaning in rows(table):
            lines += [f'   * - {key}', f'     - {default}',
                      f'     - {meaning}']
        lines += ['', 'Written as:', '']
        lines += [f'* {form}: {syntax}' for form, syntax in FORMS[table]]
        lines.append('')
        parsed = nodes.container()
        self.state.nested_parse(StringList(lines, 'wsgi_taskqueue.config'),
                                self.content_offset, parsed)
        return parsed.children


def setup(app):
    app.add_directive('taskqueue-settings', SettingsDirective)
    return {'parallel_read_safe': True, 'version': '1'}
