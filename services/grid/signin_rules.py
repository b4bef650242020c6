"""Sign-in's rules, plain Python: what a login names, what a user name and a password must be,
how failures lock, and refresh tokens' form. services/grid/signin.py applies them."""
from __future__ import annotations

import hashlib
import re
import secrets
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

from shared.errors import InvalidArgument, ResourceExhausted, Unauthenticated

# argon2id with argon2-cffi's defaults (RFC 9106's second recommended profile: 64 MiB, 3 passes).
HASHER = PasswordHasher()
# Each hash takes 64 MiB for ~50 ms: at most this many at once per process, so a burst of sign-ins
# (or of guesses) waits its turn instead of taking the server's memory.
HASHING_AT_ONCE = 4
_hashing = threading.BoundedSemaphore(HASHING_AT_ONCE)
MIN_PASSWORD, MAX_PASSWORD = 10, 256
MAX_LOGIN = 64
# A user name starts with a letter, so it is never mistaken for a phone number.
_USERNAME = re.compile(r"[a-z][a-z0-9._-]{2,31}")
_PHONE = re.compile(r"\+?[0-9]{5,20}")
# The same answer whether the login names nobody or the password is wrong: no one learns who has
# an account by trying.
WRONG = "wrong user name, phone number or password"
# Verified when the login names nobody, so an unknown login takes as long as a wrong password.
_DUMMY_HASH = HASHER.hash(secrets.token_urlsafe(16))


@dataclass(frozen=True)
class Login:
    kind: str   # "phone" or "username"
    value: str


def parse_login(raw: str) -> Login:
    """What a member typed as their login: a phone number (spaces and dashes ignored) or a user
    name (any case)."""
    text = (raw or "").strip()
    if not text or len(text) > MAX_LOGIN:
        raise Unauthenticated(WRONG)
    compact = re.sub(r"[\s-]", "", text)
    if _PHONE.fullmatch(compact):
        return Login("phone", compact)
    return Login("username", text.lower())


def login_key(login: Login, member_id: str | None) -> str:
    """The row counting failures: the member's when the login names one, else the login's own
    (hashed), so both are locked alike."""
    if member_id is not None:
        return f"member:{member_id}"
    return "login:" + hashlib.sha256(f"{login.kind}:{login.value}".encode()).hexdigest()


def check_username(username: str) -> str:
    name = username.strip().lower()
    if not _USERNAME.fullmatch(name):
        raise InvalidArgument("a user name is 3 to 32 letters, digits, '.', '_' or '-', starting with a letter")
    return name


def check_password(password: str) -> None:
    if not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise InvalidArgument(f"a password is {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    if password.strip() != password or len(set(password)) < 4:
        raise InvalidArgument("a password has no leading or trailing spaces and at least 4 different characters")


def hash_password(password: str) -> str:
    check_password(password)
    with _hashing:
        return HASHER.hash(password)


def password_matches(stored_hash: str | None, password: str) -> bool:
    """argon2id verification; with no stored hash, a dummy one is verified (same time), and fails."""
    if len(password) > MAX_PASSWORD:
        return False
    try:
        with _hashing:
            return HASHER.verify(stored_hash or _DUMMY_HASH, password) and stored_hash is not None
    except (VerificationError, InvalidHashError):
        return False


def locked_error(until: datetime) -> ResourceExhausted:
    return ResourceExhausted(f"too many failed sign-ins: try again after {until.isoformat(timespec='seconds')}")


def after_failure(failures: int, now: datetime, max_failures: int, lock_seconds: float) -> tuple[int, datetime | None]:
    """A failure's count and lock: the max_failures-th failure in a row locks for lock_seconds and
    starts the count again."""
    failures += 1
    if failures >= max_failures:
        return 0, now + timedelta(seconds=lock_seconds)
    return failures, None


def new_refresh_token() -> tuple[str, bytes]:
    """A refresh token (256 random bits) and the hash that is all the database keeps of it."""
    token = secrets.token_urlsafe(32)
    return token, refresh_hash(token)


def refresh_hash(token: str) -> bytes:
    return hashlib.sha256(token.encode()).digest()
