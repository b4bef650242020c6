"""The revocation list and what consults it on a stream: unit tests, no servers."""
import time

import pytest

from shared import auth, revocation
from shared.errors import Unauthenticated
from shared.grpc_support import _SignedInStream


@pytest.fixture(autouse=True)
def empty_list():
    revocation.clear()
    yield
    revocation.clear()


def test_stamps_round_up_to_the_millisecond_so_earlier_is_never_later():
    assert revocation.stamp(1.0001) == 1.001 and revocation.stamp(1.001) == 1.001
    t = 1_795_000_000.1234
    assert revocation.stamp(t - 0.0005) <= revocation.stamp(t)


def test_a_member_is_revoked_for_tokens_issued_at_or_before_the_time_only():
    revocation.note("m1", 100.0)
    assert revocation.revoked("m1", 99.999) and revocation.revoked("m1", 100.0)
    assert not revocation.revoked("m1", 100.001) and not revocation.revoked("m2", 1.0)
    revocation.note_all({"m1": 50.0, "m2": 10.0})  # an earlier time never undoes a later one
    assert revocation.revoked("m1", 99.0) and revocation.revoked("m2", 5.0)


class _Context:
    def is_active(self):
        return True

    def peer(self):
        return "ipv4:127.0.0.1:1"


def test_a_stream_ends_unauthenticated_once_its_member_is_revoked():
    key = auth.generate_key("stream-test")
    verified = auth.verify(auth.mint_token("m-stream", "officer", ["330106"], key=key), key=key)
    stream = _SignedInStream(_Context(), verified)
    assert stream.is_active() and stream.peer() == "ipv4:127.0.0.1:1"  # the rest of the context as it was
    revocation.note("m-stream", revocation.stamp(time.time()))
    with pytest.raises(Unauthenticated, match="revoked"):
        stream.is_active()
    with pytest.raises(Unauthenticated):
        stream.check()
