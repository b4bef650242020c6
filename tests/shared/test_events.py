"""The consumer's retry policy alone: transient failures wait, anything else goes to the broker."""
import pytest
from sqlalchemy.exc import OperationalError

from shared.errors import Aborted, InvalidArgument
from shared.events import check_envelope, MalformedEvent, retry_transient, Undecodable


def failing(times, exc):
    calls = []

    def call():
        calls.append(1)
        if len(calls) <= times:
            raise exc
        return "done"
    return call, calls


def test_transient_failures_are_retried_in_place():
    for exc in (OperationalError("SELECT 1", {}, Exception("connection refused")), Aborted("a concurrent change")):
        call, calls = failing(3, exc)
        slept = []
        assert retry_transient(call, sleep=slept.append) == "done"
        assert len(calls) == 4 and slept == [0.2, 0.4, 0.8]


def test_other_failures_go_back_to_the_broker_at_once():
    call, calls = failing(1, KeyError("incident_id"))
    with pytest.raises(KeyError):
        retry_transient(call, sleep=lambda s: None)
    assert len(calls) == 1
    call, calls = failing(1, InvalidArgument("bad"))
    with pytest.raises(InvalidArgument):
        retry_transient(call, sleep=lambda s: None)


def test_patience_runs_out():
    call, calls = failing(1000, Aborted("always"))
    with pytest.raises(Aborted):
        retry_transient(call, patience=0.0, sleep=lambda s: None)
    assert len(calls) == 1


def test_envelope_checks():
    with pytest.raises(MalformedEvent, match="not JSON"):
        check_envelope(Undecodable(b"{", ValueError("x")))
    with pytest.raises(MalformedEvent, match="lacks"):
        check_envelope({"specversion": "1.0"})
