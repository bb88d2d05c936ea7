"""Zope 5/6 as a host: zope.conf sections, the publication hooks, the
browser layer of task requests and a PAS plugin.

Include this package's ZCML (``<include package="wsgi_taskqueue.zope"/>``
or a ``package-includes`` slug) and add ``%import wsgi_taskqueue`` with
``<taskqueue NAME>`` / ``<taskqueue-server NAME>`` sections to zope.conf:
nothing else is needed (``events.py`` does the rest).  Only this
subpackage imports Zope.
"""
from __future__ import annotations

from zope.interface import Interface

__all__ = ['ITaskQueueLayer', 'install_pas_plugin']


class ITaskQueueLayer(Interface):
    """Provided by every task request and by no network request: views
    registered for this layer can only be reached as tasks
    (collective.taskqueue's ITaskQueueLayer)."""


def install_pas_plugin(acl_users, plugin_id: str = 'taskqueue'):
    """Add the task user plugin to a PluggableAuthService user folder and
    activate it (see ``pas.py``); safe to run again.  Return the plugin."""
    from .pas import install
    return install(acl_users, plugin_id)
