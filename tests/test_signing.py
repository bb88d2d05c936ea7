import hmac

import pytest

from wsgi_taskqueue.signing import Signer


@pytest.mark.parametrize('key', [
    b'', b'secret', b'k' * 64, b'a key longer than the block of sha-256, '
    b'which HMAC hashes first' * 2, bytes(range(256))])
@pytest.mark.parametrize('body', [b'', b'x', b'{"v":1}\n' + bytes(range(256))])
def test_a_signature_is_the_standard_hmac_sha256(key, body):
    assert Signer(key).sign(body) == hmac.new(key, body, 'sha256').hexdigest(
    ).encode()


def test_one_signer_signs_many_messages_alike():
    signer = Signer(b'secret')
    assert signer.sign(b'one') == signer.sign(b'one') != signer.sign(b'two')
