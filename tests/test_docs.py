"""The documentation site builds, warning-free (``-W``), as the test
command must check: a reference to a page, function or key that no longer
exists fails here."""
import pathlib
import subprocess
import sys

DOCS = pathlib.Path(__file__).resolve().parents[1] / 'docs'


def test_the_docs_build_without_warnings(tmp_path):
    result = subprocess.run(
        [sys.executable, '-m', 'sphinx', '-W', '--keep-going', '-q',
         '-b', 'html', '-d', str(tmp_path / 'doctrees'), str(DOCS),
         str(tmp_path / 'html')],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    assert (tmp_path / 'html' / 'configuration.html').exists()


def test_the_readme_is_valid_restructuredtext():
    """It is the package's long description, rendered by PyPI."""
    import docutils.core

    readme = (DOCS.parent / 'README.rst').read_text()
    docutils.core.publish_string(readme, writer='null',
                                 settings_overrides={'halt_level': 2,
                                                     'report_level': 2})
