"""``.. taskqueue-settings:: TABLE``: the keys of one of config.py's
settings tables, with their defaults and meanings, and how a key is
written in each configuration form (ini, zope.conf, Flask, Pyramid).

``.. taskqueue-forms::`` with ``[taskqueue*]`` sections as its content:
the same configuration in each form, checked by the loader first.

Generated from ``wsgi_taskqueue.settings``' tables and the descriptions of
``wsgi_taskqueue.settings_help``, so the reference cannot drift from what
the loader accepts: a key without a description, or a
description of no key, is a warning (an error under ``-W``).
"""
from __future__ import annotations

import configparser

from docutils import nodes
from docutils.parsers.rst import Directive
from docutils.statemachine import StringList
from sphinx.util import logging

from wsgi_taskqueue import settings_help
from wsgi_taskqueue.config import from_mappings
from wsgi_taskqueue.errors import ConfigurationError

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
FORMS['redis'] = FORMS['sql'] = FORMS['sync'] = FORMS['queue']
FORMS['filter'] = [('ini', '``[filter:taskqueue]`` then ``KEY = VALUE``')]
FORMS['management'] = [
    ('ini', '``[app:NAME]`` with ``use = egg:wsgi-taskqueue#management`` '
            'then ``KEY = VALUE``'),
    ('Python', '``make_app(api_key, queues, max_body_size=...)`` (metrics: '
               '``wsgi_taskqueue.metrics.enable()``)'),
]


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
        self.state.nested_parse(StringList(lines, 'wsgi_taskqueue.settings'),
                                self.content_offset, parsed)
        return parsed.children


class FormsDirective(Directive):
    has_content = True

    def run(self):
        parser = configparser.ConfigParser(interpolation=None)
        parser.read_string('\n'.join(self.content))
        sections = {'taskqueue': {}, 'taskqueue-server': {}}
        for section in parser.sections():
            kind, _, name = section.partition(':')
            sections[kind][name or 'default'] = dict(parser[section])
        try:
            from_mappings(sections['taskqueue'],
                          sections['taskqueue-server'], 'the example')
        except ConfigurationError as exc:
            raise self.error(str(exc)) from None
        lines = []
        for title, language, text in _forms(parser, sections):
            lines += [f'{title}:', '', f'.. code-block:: {language}', '']
            lines += [f'    {line}' for line in text.splitlines()] + ['']
        parsed = nodes.container()
        self.state.nested_parse(StringList(lines, 'wsgi_taskqueue.settings'),
                                self.content_offset, parsed)
        return parsed.children


def _forms(parser, sections):
    """(title, language, text) of the configuration in each form."""
    ini = '\n'.join('\n'.join([f'[{section}]'] + [
        f'{key} = {value}' for key, value in parser[section].items()]) + '\n'
        for section in parser.sections())
    zope = '%import wsgi_taskqueue\n\n' + '\n'.join(
        '\n'.join([f'<{kind} {name}>'] + [
            f'  {key} {value}' for key, value in values.items()]
            + [f'</{kind}>']) + '\n'
        for kind in sections for name, values in sections[kind].items())
    flask = '\n'.join(
        '\n'.join([f'{setting} = {{'] + [
            f'    {name!r}: {_python(values)!r},'
            for name, values in sections[kind].items()] + ['}'])
        for setting, kind in (('TASKQUEUE_QUEUES', 'taskqueue'),
                              ('TASKQUEUE_CONSUMERS', 'taskqueue-server')))
    pyramid = '\n'.join(
        f'taskqueue.{prefix}.{name}.{key} = {value}'
        for kind, prefix in (('taskqueue', 'queue'),
                             ('taskqueue-server', 'consumer'))
        for name, values in sections[kind].items()
        for key, value in (values.items() or [('queue', 'default')]))
    return [('An ini file (PasteDeploy)', 'ini', ini),
            ('zope.conf', 'text', zope),
            ('Flask, in app.config', 'python', flask),
            ('Pyramid, in the app\'s settings', 'ini', pyramid)]


def _python(values: dict) -> dict:
    """An ini section's values as a Python user writes them."""
    return {key: int(value) if value.isdigit() else value
            for key, value in values.items()}


def setup(app):
    app.add_directive('taskqueue-settings', SettingsDirective)
    app.add_directive('taskqueue-forms', FormsDirective)
    return {'parallel_read_safe': True, 'version': '1'}
