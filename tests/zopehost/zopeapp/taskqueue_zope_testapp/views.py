import json

import transaction
from AccessControl.SecurityManagement import getSecurityManager
from OFS.Folder import manage_addFolder
from persistent.list import PersistentList
from Products.Five import BrowserView
from ZODB.POSException import ConflictError

from wsgi_taskqueue import taskqueue
from wsgi_taskqueue.zope import ITaskQueueLayer, install_pas_plugin

#: Attempts of each conflict=KEY request: its first attempt conflicts.
_attempts = {}


def _app(context):
    return context.getPhysicalRoot()


def _records(app) -> PersistentList:
    """The records of the tasks run, made by the first request that adds
    a task: a task then writes the list only, never the root object that
    the adding requests write (on ZEO the web instance keeps changing the
    root while the worker runs tasks: each task that wrote the root too
    would conflict, be retried, and wait twice as long each time)."""
    if not hasattr(app, '_task_records'):
        app._task_records = PersistentList()
    return app._task_records


class Enqueue(BrowserView):
    """Add a task to ``target``; optionally create a folder first (the
    task must find it), then commit, abort, doom or conflict once."""

    def __call__(self):
        form = self.request.form
        if self.request.getHeader('Content-Type') == 'application/json':
            # As a JSON API does: the body is read to its end first.
            form = json.loads(self.request.stdin.read())
        created = form.get('create')
        if created:
            manage_addFolder(self.context, created)
        _records(_app(self.context))
        params = {'created': created} if created else None
        # A POST is replayed as a POST with its body (copied by default).
        task_id = taskqueue.add(form.get('target', '/@@record'),
                                method=self.request['REQUEST_METHOD'],
                                params=params, queue=form.get('queue'))
        outcome = form.get('outcome', 'commit')
        if outcome == 'abort':
            raise ValueError('this request fails after add')
        if outcome == 'doom':
            transaction.doom()
        if outcome == 'conflict':
            key = form['key']
            _attempts[key] = _attempts.get(key, 0) + 1
            if _attempts[key] == 1:
                raise ConflictError('the first attempt conflicts')
        return task_id


class Record(BrowserView):
    """What a task saw, kept in the ZODB."""

    def __call__(self):
        request = self.request
        app = _app(self.context)
        created = request.form.get('created')
        _records(app).append({
            'task_id': request.getHeader('X-Task-Id'),
            'user': getSecurityManager().getUser().getId(),
            'x_task_user_id': request.getHeader('X-Task-User-Id'),
            'layer': ITaskQueueLayer.providedBy(request),
            'authorization': bool(request._auth),
            'path': request['PATH_INFO'],
            'method': request['REQUEST_METHOD'],
            'note': request.form.get('note'),
            'body': (request.get('BODY') or b'').decode('utf-8'),
            'created': created,
            'found': created in app.objectIds() if created else None,
        })
        return 'recorded'


class Records(BrowserView):
    def __call__(self):
        self.request.response.setHeader('Content-Type', 'application/json')
        return json.dumps(list(getattr(_app(self.context), '_task_records',
                                       [])))


class Headers(BrowserView):
    """The X-Task-* headers this request arrived with."""

    def __call__(self):
        self.request.response.setHeader('Content-Type', 'application/json')
        environ = self.request.environ
        return json.dumps({k: v for k, v in environ.items()
                           if k.startswith('HTTP_X_TASK_')})


class SetUpPAS(BrowserView):
    """A folder ``site`` with a PAS user folder: user ``alice`` (Manager)
    logs in with Basic auth, and the task user plugin is installed."""

    def __call__(self):
        from Products.PluggableAuthService.PluggableAuthService import (
            addPluggableAuthService,
        )
        from Products.PluggableAuthService.plugins.HTTPBasicAuthHelper import (
            addHTTPBasicAuthHelper,
        )
        from Products.PluggableAuthService.plugins.ZODBRoleManager import (
            addZODBRoleManager,
        )
        from Products.PluggableAuthService.plugins.ZODBUserManager import (
            addZODBUserManager,
        )
        app = _app(self.context)
        if 'site' in app.objectIds():
            return 'exists'
        manage_addFolder(app, 'site')
        site = app.site
        addPluggableAuthService(site)
        pas = site.acl_users
        addHTTPBasicAuthHelper(pas, 'basic')
        addZODBUserManager(pas, 'users')
        addZODBRoleManager(pas, 'roles')
        pas.basic.manage_activateInterfaces(
            ['IExtractionPlugin', 'IChallengePlugin'])
        pas.users.manage_activateInterfaces(
            ['IAuthenticationPlugin', 'IUserEnumerationPlugin'])
        pas.roles.manage_activateInterfaces(
            ['IRolesPlugin', 'IRoleEnumerationPlugin'])
        pas.users.addUser('alice', 'alice', 'alice-password')
        pas.roles.assignRoleToPrincipal('Manager', 'alice')
        install_pas_plugin(pas)
        install_pas_plugin(pas)  # a second time changes nothing
        return 'created'
