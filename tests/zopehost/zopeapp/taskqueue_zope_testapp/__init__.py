"""Views of the Zope site the end-to-end tests serve: they add tasks the
ways a Zope site does, and record in the ZODB what each task saw."""
