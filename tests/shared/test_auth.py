"""Tokens and scopes: unit tests, no servers."""
import time

import jwt
import pytest

from shared import auth
from shared.errors import PermissionDenied, Unauthenticated

KEY = "k" * 40


def test_a_minted_token_verifies_to_its_principal():
    p = auth.verify_token(auth.mint_token("m1", "dispatcher", ["330106", "330106"], key=KEY), key=KEY)
    assert p == auth.Principal("m1", "dispatcher", ("330106",))


@pytest.mark.parametrize("make, words", [
    (lambda: auth.mint_token("m1", "admin", [], key="other" * 10), "invalid token"),
    (lambda: auth.mint_token("m1", "admin", [], key=KEY, ttl_seconds=-1), "expired"),
    (lambda: jwt.encode({"sub": "m1", "role": "admin", "scope": []}, KEY, algorithm="HS256"), "invalid token"),
    (lambda: jwt.encode({"iss": "gridbus", "aud": "gridbus", "sub": "m1", "iat": 0, "exp": 2**40,
                         "role": "mayor", "scope": []}, KEY, algorithm="HS256"), "role or scope"),
    (lambda: jwt.encode({"iss": "gridbus", "aud": "gridbus", "sub": "m1", "iat": 0, "exp": 2**40,
                         "role": "admin", "scope": []}, KEY, algorithm="HS512"), "invalid token"),
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
        auth.verify_token(token, key="another-key-" * 4, now=issued + 1)


def test_an_unsigned_token_is_refused():
    unsigned = jwt.encode({"iss": "gridbus", "aud": "gridbus", "sub": "m1", "iat": 0, "exp": 2**40,
                           "role": "admin", "scope": ["330100"]}, None, algorithm="none")
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
