"""A wrong zope.conf stops Zope at startup, saying where."""
import pytest

from .instance import ZopeInstance


@pytest.mark.parametrize('sections, expected', [
    ('<taskqueue default>\n</taskqueue>\n'
     '<taskqueue-server w1>\n  queue nosuch\n</taskqueue-server>\n',
     ["zope.conf of {home}", "<taskqueue-server w1>", "key 'queue'",
      "undefined queue 'nosuch'"]),
    ('<taskqueue default>\n  type redis\n  port many\n</taskqueue>\n',
     ["port: bad value 'many'", 'line ', 'zope.conf']),
])
def test_zope_does_not_start_and_names_the_section_and_key(
        tmp_path, sections, expected):
    instance = ZopeInstance(tmp_path / 'instance',
                            '%import wsgi_taskqueue\n' + sections)
    with pytest.raises(AssertionError, match='Zope exited') as raised:
        instance.start()
    for text in expected:
        assert text.format(home=instance.directory) in str(raised.value)
