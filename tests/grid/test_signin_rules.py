"""Sign-in's pure rules: logins, user names, passwords, locks, refresh tokens. No servers."""
from datetime import datetime, timedelta, timezone

import pytest

from services.grid import signin_rules as rules
from shared.errors import InvalidArgument, Unauthenticated


@pytest.mark.parametrize("typed, kind, value", [
    ("13912345678", "phone", "13912345678"),
    (" 139 1234-5678 ", "phone", "13912345678"),
    ("+8613912345678", "phone", "+8613912345678"),
    ("Zhao.Min", "username", "zhao.min"),
])
def test_a_login_is_a_phone_number_or_a_user_name(typed, kind, value):
    assert rules.parse_login(typed) == rules.Login(kind, value)


@pytest.mark.parametrize("typed", ["", "   ", "x" * 65])
def test_a_login_that_names_nobody_is_the_usual_refusal(typed):
    with pytest.raises(Unauthenticated, match=rules.WRONG):
        rules.parse_login(typed)


def test_failures_are_counted_by_member_or_by_the_logins_hash():
    login = rules.Login("username", "zhao")
    assert rules.login_key(login, "m-1") == "member:m-1"
    key = rules.login_key(login, None)
    assert key.startswith("login:") and "zhao" not in key and key == rules.login_key(login, None)


@pytest.mark.parametrize("name, ok", [("zhao", True), ("Zhao_1", True), ("13912345678", False), ("ab", False),
                                      ("zh ao", False), ("z" * 33, False)])
def test_user_names(name, ok):
    if ok:
        assert rules.check_username(name) == name.lower()
    else:
        with pytest.raises(InvalidArgument):
            rules.check_username(name)


@pytest.mark.parametrize("password", ["short", "aaaaaaaaaaaa", " padded-password ", "x" * 257])
def test_weak_or_odd_passwords_are_refused(password):
    with pytest.raises(InvalidArgument):
        rules.hash_password(password)


def test_passwords_are_argon2id_and_verify_only_themselves():
    stored = rules.hash_password("patrol-2026-ok")
    assert stored.startswith("$argon2id$") and "patrol" not in stored
    assert rules.password_matches(stored, "patrol-2026-ok")
    assert not rules.password_matches(stored, "patrol-2026-OK")
    assert not rules.password_matches(None, "patrol-2026-ok")
    assert not rules.password_matches("not a hash", "patrol-2026-ok")
    assert not rules.password_matches(stored, "x" * 10_000)


def test_the_last_allowed_failure_locks_and_starts_the_count_again():
    now = datetime(2026, 11, 25, 8, 0, tzinfo=timezone.utc)
    assert rules.after_failure(0, now, 5, 900) == (1, None)
    assert rules.after_failure(3, now, 5, 900) == (4, None)
    assert rules.after_failure(4, now, 5, 900) == (0, now + timedelta(seconds=900))
    assert "2026-11-25T08:15:00+00:00" in rules.locked_error(now + timedelta(seconds=900)).message


def test_refresh_tokens_are_random_and_kept_only_as_hashes():
    token, digest = rules.new_refresh_token()
    other, _ = rules.new_refresh_token()
    assert token != other and len(token) >= 43 and digest == rules.refresh_hash(token) and token.encode() not in digest
