"""Tokens and scopes: unit tests, no servers."""
import time

import jwt
import pytest

from shared import auth
from shared.errors import PermissionDenied, Unauthenticated

KEY = auth.generate_key("test-key")
OTHER = auth.generate_key("test-key")  # the same key id, another key
PRIVATE = auth.keys(KEY).private


def test_a_minted_token_verifies_to_its_principal():
    p = auth.verify_token(auth.mint_token("m1", "dispatcher", ["330106", "330106"], key=KEY), key=KEY)
    assert p == auth.Principal("m1", "dispatcher", ("330106",))


@pytest.mark.parametrize("make, words", [
    (lambda: auth.mint_token("m1", "admin", [], key=OTHER), "invalid token"),
    (lambda: auth.mint_token("m1", "admin", [], key=auth.generate_key("unknown")), "does not accept"),
    (lambda: auth.mint_token("m1", "admin", [], key=KEY, ttl_seconds=-1), "expired"),
    (lambda: jwt.encode({"sub": "m1", "role": "admin", "scope": []}, PRIVATE, algorithm="EdDSA",
                        headers={"kid": "test-key"}), "invalid token"),
    (lambda: jwt.encode({"iss": "gridbus", "aud": "gridbus", "sub": "m1", "iat": 0, "exp": 2**40,
                         "role": "mayor", "scope": []}, PRIVATE, algorithm="EdDSA", headers={"kid": "test-key"}),
     "role or scope"),
    # The old HMAC tokens, even with a known key id, and with the public key as the HMAC secret.
    (lambda: jwt.encode({"iss": "gridbus", "aud": "gridbus", "sub": "m1", "iat": 0, "exp": 2**40,
                         "role": "admin", "scope": []}, "k" * 40, algorithm="HS256", headers={"kid": "test-key"}),
     "invalid token"),
    (lambda: jwt.encode({"iss": "gridbus", "aud": "gridbus", "sub": "m1", "iat": 0, "exp": 2**40, "role": "admin",
                         "scope": []}, "k" * 40, algorithm="HS256"), "does not accept"),
])
def test_bad_tokens_are_unauthenticated(make, words):
    with pytest.raises(Unauthenticated, match=words):
        auth.verify_token(make(), key=KEY)


def test_a_verified_token_is_remembered_but_still_expires_and_still_needs_the_key():
    issued = int(time.time())
    token = auth.mint_token("m2", "officer", ["330106001002003"], key=KEY, ttl_seconds=3600, now=issued)
    assert auth.verify_token(token, key=KEY, now=issued + 1).member_id == "m2"
    assert auth.verify_token(token, key=KEY, now=issued + 3599).member_id == "m2"
    with pytest.raises(Unauthenticated, match="expired"):
        auth.verify_token(token, key=KEY, now=issued + 3600)
    with pytest.raises(Unauthenticated, match="invalid token"):
        auth.verify_token(token, key=OTHER, now=issued + 1)


def test_an_unsigned_token_is_refused():
    unsigned = jwt.encode({"iss": "gridbus", "aud": "gridbus", "sub": "m1", "iat": 0, "exp": 2**40,
                           "role": "admin", "scope": ["330100"]}, None, algorithm="none", headers={"kid": "test-key"})
    with pytest.raises(Unauthenticated):
        auth.verify_token(unsigned, key=KEY)


@pytest.mark.parametrize("header", [None, "", "Basic abc", "Bearer ", "token"])
def test_malformed_headers(header):
    with pytest.raises(Unauthenticated):
        auth.principal_from_header(header)


def test_scope_and_role_checks():
    p = auth.Principal("m1", "officer", ("330106001002003",))
    auth.require_scope(p, ["330100", "330106", "330106001", "330106001002", "330106001002003"], "x")
    with pytest.raises(PermissionDenied, match="outside your grids"):
        auth.require_scope(p, ["330100", "330106"], "district 330106")
    with pytest.raises(PermissionDenied, match="needs admin"):
        auth.require_role(p, "admin")
    assert auth.Principal("svc", "service", ()).covers(["anything"])


def test_a_revoked_members_earlier_tokens_are_refused_and_later_ones_taken():
    from shared import revocation
    t = time.time()
    try:
        before = auth.mint_token("m-revoked", "officer", ["330106001002003"], key=KEY, now=t - 0.0004)
        other = auth.mint_token("m-other", "officer", ["330106001002003"], key=KEY, now=t - 1)
        assert auth.verify_token(before, key=KEY).member_id == "m-revoked"  # cached as verified
        revocation.note("m-revoked", revocation.stamp(t))  # as grid stamps it
        with pytest.raises(Unauthenticated, match="revoked"):
            auth.verify_token(before, key=KEY)
        assert auth.verify_token(other, key=KEY).member_id == "m-other"
        after = auth.mint_token("m-revoked", "officer", ["330106001002003"], key=KEY, now=t + 0.002)
        assert auth.verify_token(after, key=KEY).member_id == "m-revoked"
        revocation.note("m-revoked", 1.0)  # an older time never undoes a newer one
        with pytest.raises(Unauthenticated, match="revoked"):
            auth.verify_token(before, key=KEY)
    finally:
        revocation.clear()
