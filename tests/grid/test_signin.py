"""Sign-in through the real grid gRPC server: by phone and by user name, the same refusal for an
unknown login and a wrong password, lockout and its end, refresh rotation and reuse, sign-out,
and the token working on the other calls."""
from __future__ import annotations

import random
import subprocess
import sys
import time

import grpc
import jwt
import pytest

from gridbus.grid.v1 import grid_pb2 as pb
from gridbus.grid.v1 import grid_pb2_grpc
from services.grid import signin
from shared import auth
from tests.conftest import SYSTEM
from tests.grid.test_grpc_units import ADMIN, GRID
from tests.support import metadata, service_process, wait_for

LOCK_SECONDS = 3
MAX_FAILURES = 3


@pytest.fixture(scope="module")
def stub(environment, city):
    """A grid server of its own, with a short lock and few failures allowed."""
    env = {"GRIDBUS_SIGNIN_LOCK_SECONDS": str(LOCK_SECONDS), "GRIDBUS_SIGNIN_MAX_FAILURES": str(MAX_FAILURES),
           "GRIDBUS_SIGNIN_ACCESS_TTL_SECONDS": "120"}
    with service_process(environment, "grid", "grpc", name="grid-grpc-signin", env=env) as proc:
        with grpc.insecure_channel(f"127.0.0.1:{proc.port}") as channel:
            yield grid_pb2_grpc.GridServiceStub(channel)


def officer(stub, password: str = "patrol-2026-ok", username: str | None = None) -> pb.Member:
    phone = "139" + "".join(random.choices("0123456789", k=8))
    m = stub.CreateMember(pb.CreateMemberRequest(name="Zhao Min", phone=phone, role=pb.ROLE_OFFICER), metadata=ADMIN)
    m = stub.AssignMember(pb.AssignMemberRequest(member_id=m.id, grid_code=GRID), metadata=ADMIN)
    signin.set_password(SYSTEM, m.id, password, username)
    return m


def refused(fn, request) -> grpc.RpcError:
    with pytest.raises(grpc.RpcError) as info:
        fn(request)
    return info.value


def test_sign_in_by_phone_and_by_user_name_gives_tokens_that_work(stub):
    name = f"zhao{random.randrange(10**6)}"
    m = officer(stub, username=name)
    by_phone = stub.SignIn(pb.SignInRequest(login=m.phone[:3] + " " + m.phone[3:], password="patrol-2026-ok"))
    by_name = stub.SignIn(pb.SignInRequest(login=name.upper(), password="patrol-2026-ok"))
    for answer in (by_phone, by_name):
        assert answer.member_id == m.id and answer.role == pb.ROLE_OFFICER and list(answer.scope) == [GRID]
        lifetime = answer.access_expires_at.seconds - time.time()
        assert 100 < lifetime <= 120  # minutes, not a shift
        assert answer.refresh_expires_at.seconds - time.time() > 11 * 3600
        header = jwt.get_unverified_header(answer.access_token)
        assert header["alg"] == "EdDSA" and header["kid"] == "dev-token"
        me = stub.GetMember(pb.GetMemberRequest(id=m.id), metadata=metadata(answer.access_token))
        assert me.phone == m.phone  # the member themself: unmasked
    assert by_phone.refresh_token != by_name.refresh_token


def test_unknown_login_and_wrong_password_are_the_same_refusal(stub):
    m = officer(stub)
    wrong = refused(stub.SignIn, pb.SignInRequest(login=m.phone, password="not-the-password"))
    nobody = refused(stub.SignIn, pb.SignInRequest(login="nobody-here", password="not-the-password"))
    empty = refused(stub.SignIn, pb.SignInRequest(login="", password=""))
    assert {e.code() for e in (wrong, nobody, empty)} == {grpc.StatusCode.UNAUTHENTICATED}
    assert wrong.details() == nobody.details() == empty.details() == "wrong user name, phone number or password"


def test_failures_lock_the_login_until_a_time_it_names_then_it_opens(stub):
    m = officer(stub)
    for _ in range(MAX_FAILURES - 1):
        assert refused(stub.SignIn, pb.SignInRequest(login=m.phone, password="guess-guess-1")).code() == \
            grpc.StatusCode.UNAUTHENTICATED
    locked = refused(stub.SignIn, pb.SignInRequest(login=m.phone, password="guess-guess-1"))
    assert locked.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and "try again after" in locked.details()
    # Locked even for the right password.
    again = refused(stub.SignIn, pb.SignInRequest(login=m.phone, password="patrol-2026-ok"))
    assert again.code() == grpc.StatusCode.RESOURCE_EXHAUSTED and again.details() == locked.details()
    # An unknown login is locked the same way, so a lock says nothing about who exists.
    ghost = f"ghost{random.randrange(10**6)}"
    answers = [refused(stub.SignIn, pb.SignInRequest(login=ghost, password="guess-guess-1")).code()
               for _ in range(MAX_FAILURES)]
    assert answers == [grpc.StatusCode.UNAUTHENTICATED] * (MAX_FAILURES - 1) + [grpc.StatusCode.RESOURCE_EXHAUSTED]
    # The lock ends after its time.
    opened = wait_for(lambda: stub.SignIn(pb.SignInRequest(login=m.phone, password="patrol-2026-ok")),
                      timeout=LOCK_SECONDS + 10, interval=0.5)
    assert opened.member_id == m.id


def test_refresh_rotates_and_a_reused_refresh_token_ends_the_session(stub):
    m = officer(stub)
    first = stub.SignIn(pb.SignInRequest(login=m.phone, password="patrol-2026-ok"))
    second = stub.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token))
    assert second.refresh_token != first.refresh_token and second.access_token != first.access_token
    assert second.refresh_expires_at == first.refresh_expires_at  # refreshing never lengthens a session
    stub.GetMember(pb.GetMemberRequest(id=m.id), metadata=metadata(second.access_token))
    third = stub.Refresh(pb.RefreshRequest(refresh_token=second.refresh_token))
    # The first one again: someone holds a copy; the whole session ends, the newest token too.
    reuse = refused(stub.Refresh, pb.RefreshRequest(refresh_token=first.refresh_token))
    assert reuse.code() == grpc.StatusCode.UNAUTHENTICATED and "used before" in reuse.details()
    ended = refused(stub.Refresh, pb.RefreshRequest(refresh_token=third.refresh_token))
    assert ended.code() == grpc.StatusCode.UNAUTHENTICATED and "ended" in ended.details()
    # Another sign-in is a session of its own.
    other = stub.SignIn(pb.SignInRequest(login=m.phone, password="patrol-2026-ok"))
    assert stub.Refresh(pb.RefreshRequest(refresh_token=other.refresh_token)).member_id == m.id
    junk = refused(stub.Refresh, pb.RefreshRequest(refresh_token="made-up"))
    assert junk.code() == grpc.StatusCode.UNAUTHENTICATED


def test_refresh_takes_the_members_assignments_now(stub):
    m = officer(stub)
    first = stub.SignIn(pb.SignInRequest(login=m.phone, password="patrol-2026-ok"))
    other_grid = GRID[:-1] + "2"
    stub.AssignMember(pb.AssignMemberRequest(member_id=m.id, grid_code=other_grid), metadata=ADMIN)
    renewed = stub.Refresh(pb.RefreshRequest(refresh_token=first.refresh_token))
    assert sorted(renewed.scope) == sorted([GRID, other_grid])


def test_sign_out_ends_the_session(stub):
    m = officer(stub)
    first = stub.SignIn(pb.SignInRequest(login=m.phone, password="patrol-2026-ok"))
    stub.SignOut(pb.SignOutRequest(refresh_token=first.refresh_token))
    stub.SignOut(pb.SignOutRequest(refresh_token=first.refresh_token))  # twice: nothing more to do
    err = refused(stub.Refresh, pb.RefreshRequest(refresh_token=first.refresh_token))
    assert err.code() == grpc.StatusCode.UNAUTHENTICATED and "ended" in err.details()


def test_an_inactive_member_or_one_without_a_unit_cannot_sign_in(stub):
    m = officer(stub)
    stub.ReleaseMember(pb.ReleaseMemberRequest(member_id=m.id, grid_code=GRID), metadata=ADMIN)
    err = refused(stub.SignIn, pb.SignInRequest(login=m.phone, password="patrol-2026-ok"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "no unit" in err.details()
    stub.UpdateMember(pb.UpdateMemberRequest(id=m.id, active=False), metadata=ADMIN)
    err = refused(stub.SignIn, pb.SignInRequest(login=m.phone, password="patrol-2026-ok"))
    assert err.code() == grpc.StatusCode.PERMISSION_DENIED and "inactive" in err.details()


def test_setting_a_password_checks_it_and_the_user_name(stub):
    from shared.errors import AlreadyExists, InvalidArgument, PermissionDenied
    from shared.auth import Principal
    name = f"wang{random.randrange(10**6)}"
    m = officer(stub, username=name)
    with pytest.raises(InvalidArgument, match="10 to 256"):
        signin.set_password(SYSTEM, m.id, "short")
    with pytest.raises(InvalidArgument, match="user name"):
        signin.set_password(SYSTEM, m.id, "patrol-2026-ok", "13912345678")
    other = officer(stub)
    with pytest.raises(AlreadyExists, match="taken"):
        signin.set_password(SYSTEM, other.id, "patrol-2026-ok", name)
    with pytest.raises(PermissionDenied):
        signin.set_password(Principal(m.id, "officer", (GRID,)), m.id, "patrol-2026-ok")
    # A new password ends the sessions of the old one.
    session = stub.SignIn(pb.SignInRequest(login=name, password="patrol-2026-ok"))
    signin.set_password(SYSTEM, m.id, "a-new-password-1")
    assert refused(stub.Refresh, pb.RefreshRequest(refresh_token=session.refresh_token)).code() == \
        grpc.StatusCode.UNAUTHENTICATED
    assert stub.SignIn(pb.SignInRequest(login=name, password="a-new-password-1")).member_id == m.id


def _gridbus(environment, *args, stdin: str | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "services.cli", *args], env=environment, input=stdin,
                          capture_output=True, text=True, timeout=60, check=True)


def test_operators_set_passwords_and_make_keys_from_the_command_line(environment, stub):
    m = stub.CreateMember(pb.CreateMemberRequest(name="Qian Li", phone="136" + "".join(random.choices("0123456789", k=8)),
                                                 role=pb.ROLE_DISPATCHER), metadata=ADMIN)
    stub.AssignMember(pb.AssignMemberRequest(member_id=m.id, grid_code=GRID[:6]), metadata=ADMIN)
    name = f"qian{random.randrange(10**6)}"
    out = _gridbus(environment, "grid", "set-password", "--member", m.id, "--username", name, "--stdin",
                   stdin="typed-at-the-console\n")
    assert out.stdout.strip() == "password set" and "typed-at-the-console" not in out.stdout + out.stderr
    assert stub.SignIn(pb.SignInRequest(login=name, password="typed-at-the-console")).role == pb.ROLE_DISPATCHER
    generated = _gridbus(environment, "grid", "set-password", "--member", m.id, "--generate").stdout.strip()
    assert len(generated) >= 16 and stub.SignIn(pb.SignInRequest(login=m.phone, password=generated)).member_id == m.id
    keygen = _gridbus(environment, "token", "keygen", "--key-id", "tokens-2027").stdout.splitlines()
    private = keygen[0].removeprefix("GRIDBUS_TOKEN_KEY=")
    assert private.startswith("tokens-2027:") and keygen[1].endswith(auth.public_key_text(private))
    public = _gridbus({**environment, "GRIDBUS_TOKEN_KEY": private}, "token", "public-key").stdout.strip()
    assert public == auth.public_key_text(private)
