"""Configuration: the queues and consumers of an ini file, a zope.conf
(``zope/zconfig.py``) or Python mappings (Flask, Pyramid), checked
against the settings tables (``settings.py``) and built.

Sections (PasteDeploy ini, beside the app's own)::

    [taskqueue]              queue 'default' (or the name in its `queue` key)
    [taskqueue:NAME]         queue NAME
    [taskqueue-server]       a consumer
    [taskqueue-server:NAME]  a consumer named NAME (unless `name` is set)
"""
from __future__ import annotations

import configparser
import dataclasses
import functools
import os
import threading

from .backends import BACKEND_TYPES
from .backends.redis.sharded import ShardedRedisQueue
from .consumer import Consumer, default_consumer_name
from .errors import ConfigurationError
from .registry import queue_names, register_queue
from .settings import (
    BACKEND_SETTINGS,
    CONSUMER_SECTION,
    CONSUMER_SETTINGS,
    QUEUE_SECTION,
    QUEUE_SETTINGS,
    SQL_SETTINGS,
    convert,
)

__all__ = ['configure', 'load', 'build', 'register', 'from_mappings',
           'configuration_of', 'Configuration']


@dataclasses.dataclass
class ConsumerSpec:
    """A [taskqueue-server] section, ready to become a Consumer."""

    section: str
    settings: dict

    def build(self, app) -> Consumer:
        return Consumer(app, **self.settings)


@dataclasses.dataclass
class Configuration:
    filename: str | None
    queues: dict
    consumers: list

    def build_consumers(self, app) -> list[Consumer]:
        return [spec.build(app) for spec in self.consumers]

    def joined(self, *others: Configuration) -> Configuration:
        """This configuration and ``others`` as one (an ini's sections
        and an app's settings, run by one worker)."""
        if not others:
            return self
        names = {spec.settings['name'] for spec in self.consumers}
        consumers = list(self.consumers)
        queues = dict(self.queues)
        for other in others:
            for spec in other.consumers:
                if spec.settings['name'] in names:
                    raise ConfigurationError(
                        f'two consumers are named '
                        f'{spec.settings["name"]!r}', other.filename,
                        spec.section, 'name')
                names.add(spec.settings['name'])
                consumers.append(spec)
            queues.update(other.queues)
        return Configuration(self.filename, queues, consumers)


_configured: dict[str, Configuration] = {}
_configure_lock = threading.Lock()


def configure(filename: str, variables: dict | None = None) -> Configuration:
    """Register the queues of an ini file, once per file and process (the
    filter and the server runner both load the same file).

    ``variables`` (``NAME=VALUE`` arguments of ``serve`` and ``worker``)
    are interpolated as ``%(NAME)s`` and win over the file's [DEFAULT].
    """
    path = os.path.abspath(filename)
    with _configure_lock:
        if path not in _configured:
            configuration = load(path, variables)
            register(configuration)
            _configured[path] = configuration
        return _configured[path]


def configuration_of(source) -> Configuration:
    """``source`` itself when it is a Configuration (built from Python
    mappings), else the configuration of the ini file it names."""
    if isinstance(source, Configuration):
        return source
    return configure(source)


def load(filename: str, variables: dict | None = None) -> Configuration:
    """Read and check the [taskqueue*] sections of ``filename``, or the
    ``<taskqueue*>`` sections of a zope.conf (one that says ``%import
    wsgi_taskqueue``; reading it takes Zope)."""
    if _imports_this_package(filename):
        from .zope.zconfig import load_zope_conf
        return load_zope_conf(filename)
    sections = [(section.partition(':')[0], _suffix(section), section, values)
                for section, values in _read_sections(filename, variables)]
    return build(sections, filename)


def from_mappings(queues: dict, consumers: dict,
                  source: str | None = None) -> Configuration:
    """A Configuration from Python mappings (Flask's ``app.config``,
    Pyramid's settings): ``queues`` maps a queue name to the keys of its
    [taskqueue] section, ``consumers`` a consumer name to the keys of its
    [taskqueue-server] section.

    Values may be the ini's strings or Python values (numbers, booleans, a
    list of secrets); they go through the same tables, so a wrong key or
    value fails with the ini's message, naming ``source`` as the file.
    """
    sections = []
    for kind, mapping in ((QUEUE_SECTION, queues),
                          (CONSUMER_SECTION, consumers)):
        if not isinstance(mapping, dict):
            raise ConfigurationError(
                f'expected a dict of {kind} sections by name, not '
                f'{type(mapping).__name__}', source, kind)
        for name, values in mapping.items():
            section = f'{kind}:{name}'
            if not isinstance(values, dict):
                raise ConfigurationError(
                    f'expected a dict of keys, not {type(values).__name__}',
                    source, section)
            sections.append((kind, str(name), section, {
                key: _as_text(value) for key, value in values.items()
                if value is not None}))
    return build(sections, source)


def _as_text(value):
    """A list of lines (``secret``) as the ini writes it; other values
    pass as they are, which every converter accepts."""
    if isinstance(value, (list, tuple)):
        return ' '.join(str(item) for item in value)
    return value


def build(sections, source: str | None = None) -> Configuration:
    """Check and build the queues and consumers of ``sections``.

    Every configuration reader (ini, zope.conf, Python mappings) comes
    here: ``sections`` are ``(kind, name, label, values)``, ``kind``
    QUEUE_SECTION or CONSUMER_SECTION, ``name`` the section's own name (or
    None), ``label`` how errors name the section, ``values`` its keys.
    ``source`` names the file in errors.
    """
    queues = {}
    for kind, name, label, values in sections:
        if kind == QUEUE_SECTION:
            queue_name, queue = _build_queue(source, label, name, values)
            if queue_name in queues:
                raise ConfigurationError(
                    f'queue {queue_name!r} is defined twice', source, label,
                    'queue')
            queues[queue_name] = queue
    consumers = []
    names = set()
    known_queues = set(queues) | set(queue_names())
    for kind, name, label, values in sections:
        if kind == CONSUMER_SECTION:
            spec = _consumer_spec(source, label, name, values, known_queues)
            if spec.settings['name'] in names:
                raise ConfigurationError(
                    f'two consumers are named {spec.settings["name"]!r}',
                    source, label, 'name')
            names.add(spec.settings['name'])
            consumers.append(spec)
    return Configuration(source, queues, consumers)


def register(configuration: Configuration) -> None:
    """Make the queues of ``configuration`` known to ``taskqueue.add``."""
    for name, queue in configuration.queues.items():
        register_queue(name, queue)


def _read_sections(filename: str, variables: dict | None = None
                   ) -> list[tuple[str, dict]]:
    """The [taskqueue*] sections with their own keys (not [DEFAULT]'s),
    values interpolated as PasteDeploy does (``%(here)s``), ``variables``
    winning over [DEFAULT]."""
    if not os.path.exists(filename):
        raise ConfigurationError('no such file', filename)
    here = os.path.dirname(os.path.abspath(filename))
    parser = configparser.ConfigParser(
        defaults={'here': here, '__file__': os.path.abspath(filename)})
    own_keys = configparser.RawConfigParser(default_section='\0')
    try:
        parser.read(filename)
        own_keys.read(filename)
    except configparser.Error as exc:
        raise ConfigurationError(str(exc), filename) from None
    parser.read_dict({parser.default_section: {
        name: str(value) for name, value in (variables or {}).items()
        if name not in ('here', '__file__')}})
    sections = []
    for section in parser.sections():
        if section.split(':', 1)[0] not in (QUEUE_SECTION, CONSUMER_SECTION):
            continue
        try:
            values = {key: parser.get(section, key)
                      for key in own_keys.options(section)}
        except configparser.InterpolationError as exc:
            raise ConfigurationError(
                interpolation_problem(exc), filename, section,
                exc.option) from None
        except configparser.Error as exc:
            raise ConfigurationError(str(exc), filename, section) from None
        sections.append((section, values))
    return sections


def _imports_this_package(filename: str) -> bool:
    """Whether ``filename`` is a ZConfig file with our sections."""
    try:
        with open(filename, encoding='utf-8', errors='replace') as file:
            return any(line.split() == ['%import', 'wsgi_taskqueue']
                       for line in file)
    except OSError:
        return False  # _read_sections says what is wrong


def interpolation_problem(exc: configparser.InterpolationError) -> str:
    """What is wrong with a ``%(NAME)s``, said for a person who can pass
    ``NAME=VALUE`` on the command line."""
    if isinstance(exc, configparser.InterpolationMissingOptionError):
        return (f'%({exc.reference})s is not defined: set {exc.reference} '
                f'in [DEFAULT] or pass {exc.reference}=VALUE to the command')
    return exc.message.splitlines()[0]


def _suffix(section: str) -> str | None:
    return section.partition(':')[2] or None


def _build_queue(filename, section, section_name, values):
    common = {k: v for k, v in values.items() if k in QUEUE_SETTINGS}
    common.setdefault('queue', section_name or 'default')
    common = convert(QUEUE_SETTINGS, common, filename, section)
    own = {k: v for k, v in values.items() if k not in QUEUE_SETTINGS}
    kind = common['type']
    if kind in BACKEND_SETTINGS:
        factory = BACKEND_TYPES[kind]
        options = convert(BACKEND_SETTINGS[kind], own, filename, section,
                          known=QUEUE_SETTINGS)
        options = {k: v for k, v in options.items() if v is not None}
        if BACKEND_SETTINGS[kind] is SQL_SETTINGS and 'url' not in options:
            raise ConfigurationError(
                'a SQL queue needs a SQLAlchemy URL, e.g. '
                'sqlite:///%(here)s/tasks.db', filename, section, 'url')
        shards = options.pop('shards', 1)
        if shards > 1:  # one queue over several hash tags
            factory = functools.partial(ShardedRedisQueue, shards=shards)
    else:  # a dotted name (_queue_type)
        factory = _resolve(kind, filename, section)
        options = own
    name = common.pop('queue')
    del common['type']
    common['secrets'] = common.pop('secret')
    try:
        queue = factory(name, **common, **options)
    except (TypeError, ValueError) as exc:
        raise ConfigurationError(str(exc), filename, section) from None
    return name, queue


def _resolve(dotted: str, filename, section):
    import importlib
    module_name, _, attribute = dotted.rpartition('.')
    try:
        return getattr(importlib.import_module(module_name), attribute)
    except (ImportError, AttributeError) as exc:
        raise ConfigurationError(f'cannot import {dotted!r}: {exc}',
                                 filename, section, 'type') from None


def _consumer_spec(filename, section, section_name, values,
                   known_queues) -> ConsumerSpec:
    settings = convert(CONSUMER_SETTINGS, values, filename, section)
    if settings['queue'] is None:
        settings['queue'] = 'default'
    if settings['queue'] not in known_queues:
        raise ConfigurationError(
            f'consumer of undefined queue {settings["queue"]!r}; defined '
            f'queues: {", ".join(sorted(known_queues)) or "none"}',
            filename, section, 'queue')
    if settings['name'] is None:
        settings['name'] = default_consumer_name(
            section_name or settings['queue'])
    return ConsumerSpec(section, settings)

