"""Loading the app and the server of an ini file for ``serve`` and
``worker``, as PasteDeploy does, with two differences a person at a
terminal needs:

* ``NAME=VALUE`` arguments are interpolated as ``%(NAME)s`` everywhere in
  the file and win over its ``[DEFAULT]`` (PasteDeploy's own ``global_conf``
  gives way to the file), so an ini can carry a default that the command
  line overrides;
* what is wrong with the file (a missing section, a ``%(NAME)s`` nobody
  defined) is a ConfigurationError naming the file, section and key, not
  a traceback.
"""
from __future__ import annotations

import configparser
import os

from paste.deploy import loadwsgi

from .config import interpolation_problem
from .errors import ConfigurationError

__all__ = ['load_app', 'load_server']

#: What PasteDeploy accepts as the section of an app named NAME.
_APP_SECTIONS = 'app', 'pipeline', 'composite', 'filter-app'


def load_app(filename: str, name: str = 'main',
             variables: dict | None = None):
    """The WSGI app of section ``name`` (``[app:NAME]``,
    ``[pipeline:NAME]``...)."""
    context = _context(loadwsgi.APP, filename, name, variables, ', '.join(
        f'[{prefix}:{name}]' for prefix in _APP_SECTIONS))
    return context.create()


def load_server(filename: str, name: str = 'main',
                variables: dict | None = None):
    """The loader context of ``[server:NAME]``: ``.create()`` gives the
    server runner, ``.object`` its factory."""
    return _context(loadwsgi.SERVER, filename, name, variables,
                    f'[server:{name}]')


def _context(kind, filename: str, name: str, variables: dict | None,
             expected: str):
    path = os.path.abspath(filename)
    if not os.path.exists(path):
        raise ConfigurationError('no such file', path)
    variables = {key: str(value) for key, value in (variables or {}).items()}
    try:
        loader = loadwsgi.ConfigLoader(path)
        loader.update_defaults(variables, overwrite=True)
        try:
            loader.find_config_section(kind, name=name)
        except LookupError:
            raise ConfigurationError(
                f'no section for {kind.name} {name!r}: expected {expected}',
                path) from None
        return loader.get_context(kind, name, variables)
    except configparser.InterpolationError as exc:
        raise ConfigurationError(interpolation_problem(exc), path,
                                 exc.section, exc.option) from None
    except configparser.Error as exc:
        raise ConfigurationError(str(exc), path) from None
    except LookupError as exc:  # e.g. an unknown egg:...#entry point
        raise ConfigurationError(str(exc), path) from None
