"""A PluggableAuthService plugin for ``credentials = user-id``: it logs a
task request in as the user who queued the task (collective.taskqueue's
taskauth plugin), so no cookie or password rests in the queue.

The user id comes from the running task (the dispatcher's environ marker:
its message is signed, and no header can become it), never from a header.
"""
from __future__ import annotations

from AccessControl.class_init import InitializeClass
from AccessControl.Permissions import manage_users
from Products.PageTemplates.PageTemplateFile import PageTemplateFile
from Products.PluggableAuthService.interfaces.plugins import (
    IAuthenticationPlugin,
    IExtractionPlugin,
)
from Products.PluggableAuthService.PluggableAuthService import (
    registerMultiPlugin,
)
from Products.PluggableAuthService.plugins.BasePlugin import BasePlugin
from Products.PluggableAuthService.utils import classImplements

from ..guard import current_task

__all__ = ['TaskUserPlugin', 'install', 'initialize']

#: The key of the credentials this plugin extracts.
_USER_ID = 'wsgi_taskqueue.user_id'

manage_addTaskUserPluginForm = PageTemplateFile(
    'add_plugin', globals(), __name__='manage_addTaskUserPluginForm')


def manage_addTaskUserPlugin(dispatcher, id, title=None, REQUEST=None):
    """Add a task user plugin to a PAS user folder."""
    dispatcher._setObject(id, TaskUserPlugin(id, title))
    if REQUEST is not None:
        REQUEST.response.redirect(
            f'{dispatcher.absolute_url()}/manage_workspace'
            '?manage_tabs_message=Task+user+plugin+added.')


class TaskUserPlugin(BasePlugin):
    """Extraction and authentication of a task request's signed user."""

    meta_type = 'wsgi-taskqueue Task User Plugin'

    def __init__(self, id, title=None):
        self._setId(id)
        self.title = title

    def extractCredentials(self, request):
        task = current_task(request)
        if task is None or not task.user_id:
            return {}
        return {_USER_ID: task.user_id}

    def authenticateCredentials(self, credentials):
        if credentials.get('extractor') != self.getId():
            return None
        user_id = credentials.get(_USER_ID)
        if not user_id:
            return None
        pas = self._getPAS()
        info = pas._verifyUser(pas.plugins, user_id=user_id)
        if info is None:
            return None
        return info['id'], info['login']


classImplements(TaskUserPlugin, IExtractionPlugin, IAuthenticationPlugin)
InitializeClass(TaskUserPlugin)


def install(acl_users, plugin_id: str = 'taskqueue') -> TaskUserPlugin:
    """Add the plugin to ``acl_users`` unless it is there, and activate it
    for extraction and authentication; safe to run again."""
    if plugin_id not in acl_users.objectIds():
        manage_addTaskUserPlugin(acl_users, plugin_id)
    plugin = acl_users[plugin_id]
    if not isinstance(plugin, TaskUserPlugin):
        raise ValueError(f'{plugin_id!r} in {acl_users.absolute_url_path()} '
                         f'is a {plugin.meta_type}, not a task user plugin')
    for interface in (IExtractionPlugin, IAuthenticationPlugin):
        if plugin_id not in acl_users.plugins.listPluginIds(interface):
            acl_users.plugins.activatePlugin(interface, plugin_id)
    return plugin


def initialize(context) -> None:
    """Zope's product initialization (``five:registerPackage``)."""
    registerMultiPlugin(TaskUserPlugin.meta_type)
    context.registerClass(
        TaskUserPlugin, permission=manage_users,
        constructors=(manage_addTaskUserPluginForm, manage_addTaskUserPlugin),
        visibility=None, icon=None)
