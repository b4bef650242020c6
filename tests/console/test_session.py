"""Console sessions' renewal rule: unit tests, no servers."""
import time

from services.console.session import REFRESH_MARGIN_S, Session
from services.console.signin import SignedIn
from shared.auth import Principal

WHO = Principal("m1", "dispatcher", ("330102",))


def session(refresh_token, issued_at, access_expires_at) -> Session:
    return Session("s1", "token", WHO, time.time() + 3600, issued_at=issued_at, refresh_token=refresh_token,
                   access_expires_at=access_expires_at)


def test_a_ten_minute_token_is_renewed_in_its_last_minute():
    now = time.time()
    assert not session("r", now, now + 600).needs_refresh
    assert not session("r", now - 500, now + REFRESH_MARGIN_S + 5).needs_refresh
    assert session("r", now - 550, now + REFRESH_MARGIN_S - 5).needs_refresh
    assert session("r", now - 700, now - 100).needs_refresh  # lapsed: renewed all the same


def test_a_short_token_is_renewed_in_the_last_quarter_of_its_life_and_a_pasted_one_never():
    now = time.time()
    assert not session("r", now - 5, now + 3).needs_refresh  # 8 s token, 3 s left
    assert session("r", now - 7, now + 1).needs_refresh
    assert not session(None, now - 700, now - 100).needs_refresh  # an operator's token: no refresh token


def test_renewal_replaces_the_tokens():
    s = session("r1", 1.0, 2.0)
    s.renew(SignedIn("token2", WHO, s.expires_at, 10.0, "r2", 20.0))
    assert (s.token, s.issued_at, s.refresh_token, s.access_expires_at) == ("token2", 10.0, "r2", 20.0)
