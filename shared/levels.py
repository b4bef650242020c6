"""Three levels: county, city and province deployments joined by RabbitMQ's federation plugin.

Each deployment keeps its own bus (`gridbus.events`, which only its services consume) and a
second topic exchange, `gridbus.levels`, bound to it with `#`, so it carries the deployment's own
events. A parent deployment federates its `gridbus.levels` from each child's `gridbus.levels`:
the broker's federation links copy the child's events, and the children's children's, upward,
with the envelope, ids and sources unchanged. A subscriber at a level binds to `gridbus.levels`
and receives its level and every level below, each event once (the hierarchy is a tree).

Nothing here relays events: this module only says what the broker must be told (a plan, pure and
unit-tested) and tells it through the management API. When a link is down, the child's broker
keeps the events in the link's queue and the link delivers them when it is back.
"""
from __future__ import annotations

import json
import re
from dataclasses import dataclass
from urllib.parse import quote, urlsplit

from shared.config import EVENTS_EXCHANGE
from shared.errors import InvalidArgument

LEVELS_EXCHANGE = "gridbus.levels"
POLICY = "gridbus-levels"
# County -> city -> province: an event crosses two links; one more leaves room for a district level.
MAX_HOPS = 3
# Seconds before a dropped link tries again.
RECONNECT_DELAY = 2
_NAME = re.compile(r"[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?")


@dataclass(frozen=True)
class Call:
    """One management API request: method, path (quoted), JSON body."""
    method: str
    path: str
    body: dict | None = None


def _vhost(vhost: str) -> str:
    return quote(vhost, safe="")


def check_child(name: str, uri: str) -> None:
    if not _NAME.fullmatch(name):
        raise InvalidArgument(f"a child deployment's name is a lower-case DNS label (e.g. 130102), not {name!r}")
    parts = urlsplit(uri)
    if parts.scheme not in ("amqp", "amqps") or not parts.hostname:
        raise InvalidArgument(f"the child's broker must be an amqp:// or amqps:// URI with a host, not {uri!r}")


def setup_plan(vhost: str) -> list[Call]:
    """What every deployment needs, parent or child: `gridbus.levels`, carrying its own events."""
    v = _vhost(vhost)
    return [
        Call("PUT", f"/api/exchanges/{v}/{EVENTS_EXCHANGE}", {"type": "topic", "durable": True}),
        Call("PUT", f"/api/exchanges/{v}/{LEVELS_EXCHANGE}", {"type": "topic", "durable": True}),
        Call("POST", f"/api/bindings/{v}/e/{EVENTS_EXCHANGE}/e/{LEVELS_EXCHANGE}", {"routing_key": "#"}),
    ]


def link_plan(vhost: str, child: str, uri: str) -> list[Call]:
    """At a parent: federate `gridbus.levels` from the child deployment's broker at `uri`."""
    check_child(child, uri)
    v = _vhost(vhost)
    upstream = {"uri": uri, "exchange": LEVELS_EXCHANGE, "max-hops": MAX_HOPS,
                "reconnect-delay": RECONNECT_DELAY, "ack-mode": "on-confirm", "trust-user-id": False}
    return [
        *setup_plan(vhost),
        Call("PUT", f"/api/parameters/federation-upstream/{v}/{child}", {"value": upstream}),
        # Every upstream of this deployment feeds gridbus.levels (the implicit set "all").
        Call("PUT", f"/api/policies/{v}/{POLICY}",
             {"pattern": f"^{re.escape(LEVELS_EXCHANGE)}$", "apply-to": "exchanges",
              "definition": {"federation-upstream-set": "all"}, "priority": 10}),
    ]


def unlink_plan(vhost: str, child: str) -> list[Call]:
    return [Call("DELETE", f"/api/parameters/federation-upstream/{_vhost(vhost)}/{child}")]


def redact_uri(uri: str) -> str:
    """An upstream's URI without its password, for printing."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    netloc = f"{parts.username}:***@{parts.hostname}" + (f":{parts.port}" if parts.port else "")
    return parts._replace(netloc=netloc).geturl()


class Management:
    """RabbitMQ's management HTTP API (the rabbitmq_management plugin), as an operator uses it."""

    def __init__(self, url: str, *, timeout: float = 10.0):
        import httpx

        parts = urlsplit(url)
        base = parts._replace(netloc=parts.hostname + (f":{parts.port}" if parts.port else "")).geturl()
        from shared import tls
        self._http = httpx.Client(base_url=base, auth=(parts.username or "guest", parts.password or "guest"),
                                  timeout=timeout, verify=tls.management_verify())  # https: the broker's CA

    def __enter__(self) -> "Management":
        return self

    def __exit__(self, *exc) -> None:
        self._http.close()

    def apply(self, calls: list[Call]) -> None:
        for call in calls:
            answer = self._http.request(call.method, call.path, content=json.dumps(call.body) if call.body else None,
                                        headers={"content-type": "application/json"})
            if answer.status_code == 404 and call.method == "DELETE":
                continue
            if answer.status_code >= 400:
                raise RuntimeError(f"{call.method} {call.path}: {answer.status_code} {answer.text[:300]}")

    def links(self, vhost: str) -> list[dict]:
        """The federation links of this deployment (needs rabbitmq_federation_management)."""
        answer = self._http.get(f"/api/federation-links/{_vhost(vhost)}")
        answer.raise_for_status()
        return answer.json()

    def upstreams(self, vhost: str) -> list[dict]:
        answer = self._http.get(f"/api/parameters/federation-upstream/{_vhost(vhost)}")
        answer.raise_for_status()
        return answer.json()


def vhost_of(amqp_uri: str) -> str:
    """The virtual host an AMQP URI names ('/' when it names none)."""
    from urllib.parse import unquote
    path = urlsplit(amqp_uri).path
    return unquote(path[1:]) if len(path) > 1 else "/"
