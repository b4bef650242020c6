"""Rotating the key that signs access tokens: each token names its key (`kid`); during a rotation
the new key signs and the old one's public half still verifies (two keys at once); once the old
key is dropped its tokens are refused. Pure checks, then the real grid server."""
from __future__ import annotations

import grpc
import jwt
import pytest

from gridbus.grid.v1 import grid_pb2 as pb
from gridbus.grid.v1 import grid_pb2_grpc
from shared import auth
from shared.errors import Unauthenticated
from tests.support import metadata, service_process

OLD = auth.generate_key("tokens-2026-10")
NEW = auth.generate_key("tokens-2026-11")
OLD_PUBLIC, NEW_PUBLIC = auth.public_key_text(OLD), auth.public_key_text(NEW)


def test_a_token_names_its_key():
    token = auth.mint_token("m1", "officer", ["330106"], key=OLD)
    assert jwt.get_unverified_header(token) == {"alg": "EdDSA", "kid": "tokens-2026-10", "typ": "JWT"}


def test_during_a_rotation_both_keys_verify_and_the_new_one_signs():
    rotating = auth.keys(NEW, OLD_PUBLIC)
    assert rotating.key_id == "tokens-2026-11" and set(rotating.public) == {"tokens-2026-10", "tokens-2026-11"}
    old_token = auth.mint_token("m1", "officer", ["330106"], key=OLD)
    assert auth.verify_token(old_token, key=rotating).member_id == "m1"
    new_token = auth.mint_token("m2", "officer", ["330106"], key=rotating)
    assert jwt.get_unverified_header(new_token)["kid"] == "tokens-2026-11"
    assert auth.verify_token(new_token, key=rotating).member_id == "m2"
    # Servers not yet given the new key refuse its tokens: give every verifier the new public key first.
    with pytest.raises(Unauthenticated, match="does not accept"):
        auth.verify_token(new_token, key=OLD)


def test_once_the_old_key_is_dropped_its_tokens_are_refused():
    old_token = auth.mint_token("m1", "officer", ["330106"], key=OLD)
    with pytest.raises(Unauthenticated, match="does not accept .'tokens-2026-10'."):
        auth.verify_token(old_token, key=auth.keys(NEW))


def test_a_verify_key_under_the_signing_keys_id_is_not_taken_for_it():
    """The signing key's own public half is what verifies its id, whatever the list says."""
    impostor = auth.public_key_text(auth.generate_key("tokens-2026-11"))
    k = auth.keys(NEW, impostor)
    token = auth.mint_token("m1", "officer", ["330106"], key=k)
    assert auth.verify_token(token, key=k).member_id == "m1"


def _grid_server(environment, key: str, verify: str = ""):
    env = {"GRIDBUS_TOKEN_KEY": key, "GRIDBUS_TOKEN_VERIFY_KEYS": verify}
    return service_process(environment, "grid", "grpc", name=f"grid-grpc-{key.partition(':')[0]}-{bool(verify)}",
                           env=env)


def _answer(port: int, token: str):
    with grpc.insecure_channel(f"127.0.0.1:{port}") as channel:
        stub = grid_pb2_grpc.GridServiceStub(channel)
        try:
            stub.GetUnit(pb.GetUnitRequest(code="330100"), metadata=metadata(token))
            return grpc.StatusCode.OK
        except grpc.RpcError as exc:
            return exc.code()


def test_a_rotation_on_the_real_server(environment, city):
    old_token = auth.mint_token("rotation-admin", "admin", ["330100"], key=OLD)
    new_token = auth.mint_token("rotation-admin", "admin", ["330100"], key=NEW)
    with _grid_server(environment, OLD) as before:
        assert _answer(before.port, old_token) == grpc.StatusCode.OK
        assert _answer(before.port, new_token) == grpc.StatusCode.UNAUTHENTICATED
    with _grid_server(environment, NEW, OLD_PUBLIC) as during:
        assert _answer(during.port, old_token) == grpc.StatusCode.OK
        assert _answer(during.port, new_token) == grpc.StatusCode.OK
    with _grid_server(environment, NEW) as after:
        assert _answer(after.port, old_token) == grpc.StatusCode.UNAUTHENTICATED
        assert _answer(after.port, new_token) == grpc.StatusCode.OK
