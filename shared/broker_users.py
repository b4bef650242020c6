"""Who may do what on the broker: the one declaration of gridbus's RabbitMQ users.

Each service connects as its own user, `<prefix><service>` (GRIDBUS_BROKER_USER_PREFIX, default
`gridbus-`), so the broker knows who published:

- topic permissions on `gridbus.events` let a user publish only its own `<service>.` routing keys;
- publishers set the AMQP `user_id` property, which RabbitMQ refuses unless it is the connection's
  user, and consumers accept an event only from the user of the service that owns its type
  (`owner`: the prefix of the type, one of the services with an events.proto); the rest is
  dead-lettered (shared/events.py);
- on `nameko-rpc` a user may bind only its own RPC queue's key (`<service>.*`) and reply keys
  (UUIDs), and read only its own `rpc-<service>` and `rpc.reply-<service or user>-...` queues, so
  nobody else reads its requests (which carry bearer tokens) or its replies.

`plan` turns the declaration into management API calls (shared/levels.py `Management` sends them):
`gridbus broker users` (compose's migrate, the k8s Job), `make run` and the benchmarks
(demo/services.py) and the tests (tests/conftest.py) use it.
docs/security.md says what the boundary trusts and why."""
from __future__ import annotations

import functools
import importlib.util
import os
import re
import secrets
from dataclasses import dataclass
from typing import Mapping
from urllib.parse import quote, unquote, urlsplit

from shared.config import EVENTS_EXCHANGE
from shared.levels import LEVELS_EXCHANGE, Call, vhost_of

PREFIX = "gridbus-"  # the default of GRIDBUS_BROKER_USER_PREFIX, which the deployment files use
DLX = "gridbus.dlx"
RPC_EXCHANGE = "nameko-rpc"
MQTT_EXCHANGE = "amq.topic"
DEFAULT_EXCHANGE = "amq.default"  # what permissions call the default exchange ("")
# The federation link of a parent deployment reads this deployment's gridbus.levels as this user.
LINK = "link"
# Services that connect to the broker, and what each does there beyond the common part.
# (tests/shared/test_broker_users.py holds these to services/registry.py: RPC servers are the
# services with a nameko process.)
RPC_SERVERS = ("grid", "incidents", "dispatch", "credit", "subscriptions", "sensors", "emergencies")
# The rest only consume, through live feeds (every process hears grid's revocations).
CLIENTS = ("console", "open311")
SERVICES = RPC_SERVERS + CLIENTS
_UUID = "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
NOTHING = "^$"


@functools.lru_cache(maxsize=1)
def event_owners() -> frozenset[str]:
    """The services that publish events: those with a protos/gridbus/<service>/v1/events.proto
    (its generated module), whose `@event` types all start with `<service>.` (a test holds that)."""
    import gridbus  # the generated protos (gen/)

    def has_events(package: str) -> bool:
        try:
            return importlib.util.find_spec(f"gridbus.{package}.v1.events_pb2") is not None
        except ModuleNotFoundError:  # no v1
            return False
    # Namespace packages (no __init__.py), which pkgutil does not list: the folders themselves.
    return frozenset(name for path in gridbus.__path__ for name in os.listdir(path)
                     if name.isidentifier() and has_events(name))


def owner(event_type: str) -> str | None:
    """The service that owns an event type (`incidents.incident.closed` -> incidents), or None."""
    prefix = event_type.partition(".")[0]
    return prefix if prefix in event_owners() else None


def default_prefix() -> str:
    from shared.config import settings
    return settings().broker_user_prefix


def user_name(service: str, prefix: str | None = None) -> str:
    return f"{default_prefix() if prefix is None else prefix}{service}"


def expected_publisher(event_type: str, prefix: str | None = None) -> str | None:
    """The only user_id an event of this type may carry, or None when no service owns the type."""
    service = owner(event_type)
    return user_name(service, prefix) if service else None


def from_owner(event: dict, user_id: str | None, prefix: str | None = None) -> bool:
    """Whether a message's AMQP user_id (which the broker vouches for) is the user of the service
    that owns its event's type: the only events a consumer may act on."""
    expected = expected_publisher(str(event.get("type", "")), prefix)
    return expected is not None and user_id == expected


@dataclass(frozen=True)
class Grant:
    """One user's permissions in the vhost: regexes on resource names, and per topic exchange
    regexes on routing keys (write: publishing; read: binding a queue)."""
    user: str
    configure: str
    write: str
    read: str
    topics: tuple[tuple[str, str, str], ...]  # (exchange, write, read)


def _any(*names: str) -> str:
    return "^(" + "|".join(names) + ")$"


def grant(service: str, prefix: str | None = None) -> Grant:
    """What a service's user may do; everything else the broker refuses."""
    user = user_name(service, prefix)
    e = re.escape
    own = rf"gridbus\.{e(service)}\..*"   # its event queues and their dead-letter queues
    # Server-named queues (live feeds, shared/changefeed.py) are exclusive: no other connection
    # may consume from or bind them, whatever its permissions.
    mine = [own, r"amq\.gen-.*"]
    configure, write, read = [*mine], [*mine, e(DLX)], [*mine, e(EVENTS_EXCHANGE), e(DLX)]
    topics = [(EVENTS_EXCHANGE, NOTHING, ".*")]
    if service in event_owners():
        write.append(e(EVENTS_EXCHANGE))
        topics = [(EVENTS_EXCHANGE, rf"^{e(service)}\.", ".*")]
    if service in RPC_SERVERS:
        # Its own RPC queue, and reply queues named after the service (a nameko RpcProxy's) or
        # the user (health probes, `gridbus health nameko <service>`: shared/health.py).
        rpc = [rf"rpc-{e(service)}", rf"rpc\.reply-({e(service)}|{e(user)})-{_UUID}"]
        configure += [e(RPC_EXCHANGE), *rpc]
        write += [e(RPC_EXCHANGE), *rpc]
        read += [e(RPC_EXCHANGE), *rpc]
        # Publish: requests to itself (its health probe) and replies (to UUID keys); bind: how
        # nameko binds rpc-<service>, and its reply queues.
        topics.append((RPC_EXCHANGE, _any(rf"{e(service)}\.[a-z_]+", _UUID), _any(rf"{e(service)}\.\*", _UUID)))
    if service == "sensors":
        # Devices publish on amq.topic (services/sensors/broker.py); its intake queue binds there.
        read.append(e(MQTT_EXCHANGE))
        topics.append((MQTT_EXCHANGE, NOTHING, r"^sensors\.[^.]+\.(alarm|heartbeat)$"))
    if service == "subscriptions":
        # Subscribers' queues, and the filtered copies (live and replayed) put straight into them
        # through the default exchange (services/subscriptions/delivery.py).
        subscribers = r"gridbus\.sub\..*"
        configure.append(subscribers)
        write += [subscribers, e(DEFAULT_EXCHANGE)]
        read.append(subscribers)
    return Grant(user, _any(*configure), _any(*write), _any(*read), tuple(topics))


def link_grant(prefix: str | None = None) -> Grant:
    """The federation link user a parent deployment reads this one's gridbus.levels with: it
    declares the link's queue and exchange (named `federation: gridbus.levels -> ...`) and reads."""
    link = rf"federation: {re.escape(LEVELS_EXCHANGE)} -> .*"
    return Grant(user_name(LINK, prefix), _any(link), _any(link), _any(re.escape(LEVELS_EXCHANGE), link),
                 ((LEVELS_EXCHANGE, NOTHING, ".*"),))


def grants(prefix: str | None = None) -> list[Grant]:
    return [grant(s, prefix) for s in SERVICES] + [link_grant(prefix)]


def topology_plan(vhost: str) -> list[Call]:
    """The exchanges every user uses but none may configure (so none may delete them)."""
    v = quote(vhost, safe="")
    return [Call("PUT", f"/api/exchanges/{v}/{EVENTS_EXCHANGE}", {"type": "topic", "durable": True}),
            Call("PUT", f"/api/exchanges/{v}/{DLX}", {"type": "direct", "durable": True})]


def plan(vhost: str, passwords: Mapping[str, str], prefix: str | None = None) -> list[Call]:
    """Creates (or resets) each user with its password (by user name) and its permissions."""
    calls = topology_plan(vhost)
    for g in grants(prefix):
        calls += [Call("PUT", f"/api/users/{quote(g.user, safe='')}", {"password": passwords[g.user], "tags": ""}),
                  *permission_plan(vhost, g)]
    return calls


def permission_plan(vhost: str, g: Grant) -> list[Call]:
    """A user's permissions in the vhost, replacing what it had there."""
    v, u = quote(vhost, safe=""), quote(g.user, safe="")
    return [Call("PUT", f"/api/permissions/{v}/{u}", {"configure": g.configure, "write": g.write, "read": g.read}),
            # Topic permissions are per exchange; old ones for other exchanges are dropped first.
            Call("DELETE", f"/api/topic-permissions/{v}/{u}"),
            *[Call("PUT", f"/api/topic-permissions/{v}/{u}", {"exchange": x, "write": w, "read": r})
              for x, w, r in g.topics]]


def remove_plan(prefix: str | None = None) -> list[Call]:
    return [Call("DELETE", f"/api/users/{quote(g.user, safe='')}") for g in grants(prefix)]


def env_name(service: str) -> str:
    """Where `gridbus broker users` finds a user's URI (its password), and what a service's
    process is given as GRIDBUS_AMQP_URI: GRIDBUS_AMQP_URI_<SERVICE>."""
    return f"GRIDBUS_AMQP_URI_{service.upper()}"


def uri_for(base_uri: str, user: str, password: str) -> str:
    """`base_uri` (host, port, vhost, query) with this user's credentials."""
    parts = urlsplit(base_uri)
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{quote(user, safe='')}:{quote(password, safe='')}@{host}").geturl()


def credentials(uri: str) -> tuple[str, str]:
    parts = urlsplit(uri)
    return unquote(parts.username or ""), unquote(parts.password or "")


def passwords_from(env: Mapping[str, str], prefix: str | None = None) -> dict[str, str]:
    """Each user's password from its GRIDBUS_AMQP_URI_<SERVICE> where set (the URI's user must be
    the declared one); a new random one for the rest."""
    out = {}
    for service in (*SERVICES, LINK):
        user, uri = user_name(service, prefix), env.get(env_name(service))
        if uri:
            given, password = credentials(uri)
            if given != user or not password:
                raise ValueError(f"{env_name(service)} must name the user {user} with a password, not {given!r}")
            out[user] = password
        else:
            out[user] = secrets.token_urlsafe(24)
    return out


def provision(management_url: str, base_uri: str, *, prefix: str | None = None,
              env: Mapping[str, str] | None = None) -> dict[str, str]:
    """Creates every user in base_uri's vhost, with the shared exchanges; returns each service's
    URI by env_name (GRIDBUS_AMQP_URI_<SERVICE>)."""
    from shared.levels import Management
    passwords = passwords_from(os.environ if env is None else env, prefix)
    with Management(management_url) as api:
        api.apply(plan(vhost_of(base_uri), passwords, prefix))
    return {env_name(s): uri_for(base_uri, user_name(s, prefix), passwords[user_name(s, prefix)])
            for s in (*SERVICES, LINK)}


def remove(management_url: str, prefix: str | None = None) -> None:
    from shared.levels import Management
    with Management(management_url) as api:
        api.apply(remove_plan(prefix))
