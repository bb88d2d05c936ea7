"""End to end: the examples served by waitress in subprocesses, driven over
HTTP, checked over HTTP and in the apps' databases."""
