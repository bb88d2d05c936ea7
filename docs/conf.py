"""Sphinx configuration of the wsgi-taskqueue documentation.

Built warning-free by the test suite (tests/test_docs.py, ``-W``):
``python -m sphinx -W -b html docs docs/_build``.
"""
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(__file__), '_ext'))

import wsgi_taskqueue  # noqa: E402

project = 'wsgi-taskqueue'
copyright = 'the wsgi-taskqueue authors'
release = wsgi_taskqueue.__version__
version = '.'.join(release.split('.')[:2])

extensions = [
    'sphinx.ext.autodoc',
    'sphinx.ext.viewcode',
    'settings_reference',
]
exclude_patterns = ['_build']
html_theme = 'alabaster'
html_static_path = []
autodoc_member_order = 'bysource'
autodoc_default_options = {'members': True}
# Type hints stay in the signatures; many name classes of optional
# dependencies that autodoc should not try to resolve.
autodoc_typehints = 'signature'
nitpicky = False
