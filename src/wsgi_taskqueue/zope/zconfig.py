"""zope.conf sections: ``%import wsgi_taskqueue``, then ``<taskqueue NAME>``
and ``<taskqueue-server NAME>``.

``component.xml`` (at the package root, where ``%import`` looks) declares
the key names only; the converters and defaults are the settings tables of
``settings.py``, and ``component.xml`` is generated from them
(``component_xml()``; a test keeps the file equal to it).  Each key is
checked by its table's converter as ZConfig reads it, so a bad value fails
naming the file, line and key; what depends on several keys or sections
(keys of another queue type, a consumer of an undefined queue) is checked
by ``config.build`` when Zope starts.

Zope 5/6 admits product sections only by name (``zope.product.base``), so
the section name is the queue name (unless a ``queue`` key says otherwise)
and the consumer name (unless ``name`` does).
"""
from __future__ import annotations

import os

from .. import config, settings

__all__ = ['QueueSection', 'ConsumerSection', 'configuration',
           'load_zope_conf', 'component_xml', 'queue_keys', 'consumer_keys']

#: Where ``%import wsgi_taskqueue`` finds the component.
COMPONENT_PATH = os.path.join(os.path.dirname(os.path.dirname(__file__)),
                              'component.xml')


class _KeyCheckers:
    """``queue_keys.port``: the ZConfig datatype of a key, its table's
    converter, keeping the text (``config.build`` converts it again with
    the other keys of its section)."""

    def __init__(self, *tables):
        self.table = {}
        for table in tables:
            for key, (converter, _) in table.items():
                self.table.setdefault(key, converter)

    def __getattr__(self, key):
        try:
            converter = self.table[key]
        except KeyError:
            raise AttributeError(key) from None

        def check(value):
            try:
                converter(value)
            except (TypeError, ValueError) as exc:
                raise ValueError(f'{key}: bad value {value!r}: {exc}') \
                    from None
            return value
        check.__name__ = key
        return check

    def names(self):
        return list(self.table)

    def keytype(self, name):
        """The sections' key type: names an unknown key with its line
        (ZConfig's own error about one gives no line)."""
        key = name.lower()
        if key not in self.table:
            raise ValueError(f'unknown key {name!r}; known keys: '
                             f'{", ".join(sorted(self.table))}')
        return key


queue_keys = _KeyCheckers(settings.QUEUE_SETTINGS,
                          *settings.BACKEND_SETTINGS.values())
consumer_keys = _KeyCheckers(settings.CONSUMER_SETTINGS)


class _Section:
    """A ``<taskqueue NAME>`` or ``<taskqueue-server NAME>`` section: its
    name and the keys it sets, as text.  Zope keeps it in
    ``product_config`` under its name."""

    kind = ''

    def __init__(self, section):
        self.name = section.getSectionName()
        self.values = {key: getattr(section, key)
                       for key in section._attributes
                       if getattr(section, key) is not None}

    def getSectionName(self):
        return self.name

    @property
    def label(self):
        return f'<{self.kind} {self.name}>'

    def __repr__(self):
        return self.label


class QueueSection(_Section):
    kind = settings.QUEUE_SECTION


class ConsumerSection(_Section):
    kind = settings.CONSUMER_SECTION


def configuration(product_config: dict, source: str = 'zope.conf'
                  ) -> config.Configuration:
    """The queues and consumers of Zope's ``product_config`` (the sections
    of this component among those of other products)."""
    sections = [(section.kind, section.name, section.label, section.values)
                for section in product_config.values()
                if isinstance(section, _Section)]
    return config.build(sections, source)


def load_zope_conf(path: str) -> config.Configuration:
    """The queues and consumers of the zope.conf at ``path``, read with
    Zope's own schema (for the operator commands)."""
    import ZConfig
    from Zope2.Startup.options import ZopeWSGIOptions

    try:
        root = ZopeWSGIOptions(configfile=path)().configroot
    except ZConfig.ConfigurationError as exc:
        raise config.ConfigurationError(str(exc), path) from None
    return configuration(root.product_config or {}, path)


def component_xml() -> str:
    """The text of ``component.xml``: every key of the settings tables."""
    def keys(checkers, prefix):
        return ''.join(f'    <key name="{key}" datatype=".{prefix}.{key}"/>\n'
                       for key in checkers.names())
    return (
        '<!-- Generated from the settings tables of wsgi_taskqueue/settings.py'
        ' by\n     wsgi_taskqueue.zope.zconfig.component_xml(); keep them'
        ' equal. -->\n'
        '<component prefix="wsgi_taskqueue.zope.zconfig">\n'
        '  <sectiontype name="taskqueue" datatype=".QueueSection"\n'
        '               keytype=".queue_keys.keytype"\n'
        '               implements="zope.product.base">\n'
        '    <description>A task queue; its name is the queue name unless'
        ' a queue key\n      says otherwise.</description>\n'
        f'{keys(queue_keys, "queue_keys")}'
        '  </sectiontype>\n'
        '  <sectiontype name="taskqueue-server" datatype=".ConsumerSection"'
        '\n               keytype=".consumer_keys.keytype"'
        '\n               implements="zope.product.base">\n'
        '    <description>A consumer of a queue, running in this Zope'
        ' process; its name\n      is the consumer name unless a name key'
        ' says otherwise.</description>\n'
        f'{keys(consumer_keys, "consumer_keys")}'
        '  </sectiontype>\n'
        '</component>\n')
