"""Console sessions: server-side, behind a signed cookie holding only the session's id.

The bearer token never reaches the browser. The cookie is HttpOnly and SameSite=Strict (and
Secure over https); every request that changes something must carry the session's CSRF token
in a header (synchronizer token), come from the console's own origin and send JSON, so no
other site can make a signed-in browser act. A password sign-in's session lasts as long as its
refresh token (the shift): its access token is renewed here, a minute before it lapses, by the
request that finds it so; one renewal at a time per session. A session ends at sign-out, when the
refresh is refused (the member's sessions were revoked), or with a pasted token's expiry."""
from __future__ import annotations

import asyncio
import hmac
import json
import secrets
import threading
import time
from dataclasses import dataclass, field

from itsdangerous import BadSignature, Signer
from starlette.requests import Request
from starlette.responses import Response

from services.console.signin import SignedIn
from shared import revocation
from shared.auth import Principal
from shared.errors import InvalidArgument, PermissionDenied, Unauthenticated

COOKIE = "gridbus_console"
# Each app has its own cookie (a dispatcher's and an officer's sessions never stand in for each other).
COOKIES = {"console": COOKIE, "officer": "gridbus_officer"}
JSON = ("application/json",)
CSRF_HEADER = "x-csrf-token"
UNSAFE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
# An access token is renewed this long before it lapses, so no call goes out with a stale one.
REFRESH_MARGIN_S = 60


@dataclass
class Session:
    id: str
    token: str
    principal: Principal
    expires_at: float
    app: str = "console"
    csrf: str = field(default_factory=lambda: secrets.token_urlsafe(32))
    issued_at: float = 0.0  # the token's: refused once its member's sessions are revoked
    # A password sign-in's refresh token (never sent to the browser) and when its access token
    # lapses; None for an operator's pasted token, which ends the session when it expires.
    refresh_token: str | None = None
    access_expires_at: float = 0.0
    refreshing: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    @property
    def alive(self) -> bool:
        return time.time() < self.expires_at and not revocation.revoked(self.principal.member_id, self.issued_at)

    @property
    def needs_refresh(self) -> bool:
        """The access token lapses within REFRESH_MARGIN_S, or a quarter of its life (or has):
        time to renew it."""
        if self.refresh_token is None:
            return False
        margin = min(REFRESH_MARGIN_S, (self.access_expires_at - self.issued_at) / 4)
        return time.time() > self.access_expires_at - margin

    def renew(self, signed_in: SignedIn) -> None:
        """The refreshed tokens replace the old ones (the old refresh token is spent)."""
        self.token, self.principal, self.issued_at = signed_in.token, signed_in.principal, signed_in.issued_at
        self.refresh_token = signed_in.refresh_token
        self.access_expires_at = signed_in.access_expires_at or signed_in.expires_at


class Sessions:
    """In the console's memory: a restart signs everyone out (their tokens stay valid)."""

    def __init__(self, secret: bytes | None = None):
        self._signer = Signer(secret or secrets.token_bytes(32), salt="gridbus-console-session")
        self._by_id: dict[str, Session] = {}
        self._lock = threading.Lock()
        self._ended: list = []  # callbacks told when a session ends (live streams close)

    def on_end(self, callback) -> None:
        self._ended.append(callback)

    def start(self, signed_in: SignedIn, app: str = "console") -> tuple[Session, str]:
        """A new session of that app and the cookie value naming it."""
        session = Session(secrets.token_urlsafe(32), signed_in.token, signed_in.principal, signed_in.expires_at, app,
                          issued_at=signed_in.issued_at, refresh_token=signed_in.refresh_token,
                          access_expires_at=signed_in.access_expires_at or signed_in.expires_at)
        with self._lock:
            self._purge()
            self._by_id[session.id] = session
        return session, self._signer.sign(session.id).decode()

    def find(self, cookie: str | None) -> Session | None:
        if not cookie:
            return None
        try:
            session_id = self._signer.unsign(cookie).decode()
        except BadSignature:
            return None
        with self._lock:
            session = self._by_id.get(session_id)
        if session is not None and not session.alive:
            self.end(session)
            return None
        return session

    def end(self, session: Session) -> None:
        with self._lock:
            self._by_id.pop(session.id, None)
        for callback in self._ended:
            callback(session)

    def _purge(self) -> None:
        for sid in [sid for sid, s in self._by_id.items() if not s.alive]:
            del self._by_id[sid]


def set_cookie(response: Response, request: Request, value: str, expires_at: float, app: str = "console") -> None:
    response.set_cookie(COOKIES[app], value, max_age=max(int(expires_at - time.time()), 0), path="/", httponly=True,
                        samesite="strict", secure=request.url.scheme == "https")


def clear_cookie(response: Response, request: Request, app: str = "console") -> None:
    response.delete_cookie(COOKIES[app], path="/", httponly=True, samesite="strict", secure=request.url.scheme == "https")


def check_request_origin(request: Request, body_types: tuple[str, ...] = JSON) -> None:
    """A request that changes something comes from the console's own page, as JSON (or, for an
    upload, as one of the types the route takes)."""
    origin = request.headers.get("origin")
    if origin is not None and origin != f"{request.url.scheme}://{request.url.netloc}":
        raise PermissionDenied("requests from other sites are refused")
    if request.method in ("POST", "PUT", "PATCH") and \
            request.headers.get("content-type", "").split(";")[0].strip().lower() not in body_types:
        raise PermissionDenied("send JSON (Content-Type: application/json)" if body_types == JSON
                               else f"send one of {', '.join(body_types)}")


def current(sessions: Sessions, request: Request, app: str = "console", body_types: tuple[str, ...] = JSON) -> Session:
    """The request's session of that app; for a change, its CSRF token and origin checked too."""
    session = sessions.find(request.cookies.get(COOKIES[app]))
    if session is None or session.app != app:
        raise Unauthenticated("sign in first")
    if request.method in UNSAFE_METHODS:
        check_request_origin(request, body_types)
        sent = request.headers.get(CSRF_HEADER, "")
        if not hmac.compare_digest(sent.encode(), session.csrf.encode()):
            raise PermissionDenied("the request lacks this session's CSRF token; reload the page")
    return session


async def read_json(request: Request) -> dict:
    try:
        body = json.loads(await request.body() or b"{}")
    except ValueError:
        raise InvalidArgument("the body is not JSON")
    if not isinstance(body, dict):
        raise InvalidArgument("the body must be a JSON object")
    return body
