"""Keyed digests: the standard HMAC-SHA256, separated by domain."""

import hashlib
import hmac

from core.identity import keyed_digest


def test_keyed_digest_is_the_standard_hmac_sha256_of_domain_and_value() -> None:
    expected = hmac.new(b"secret", b"pseudonym:observatoire\x1femail:a@b.fr", hashlib.sha256).hexdigest()
    assert keyed_digest(b"secret", "pseudonym:observatoire", "email:a@b.fr") == expected
    assert keyed_digest(b"other", "pseudonym:observatoire", "email:a@b.fr") != expected
    assert keyed_digest(b"secret", "pseudonym:reseau-danse", "email:a@b.fr") != expected
