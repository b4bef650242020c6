"""Three levels on the real broker: two counties, a city and a province, each deployment a
virtual host, joined by RabbitMQ's federation plugin as `gridbus levels` configures it."""
from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime, timezone
from types import SimpleNamespace
from urllib.parse import quote

import httpx
import kombu
import pytest

from shared.config import settings
from shared.outbox import publish_row
from tests.support import wait_for

AMQP = "amqp://guest:guest@127.0.0.1:5672"   # the run's broker; set from the environment below
COUNTIES = ("county-a", "county-b")


def ctl(*args):
    subprocess.run(["rabbitmqctl", "-q", *args], check=True, capture_output=True, timeout=60)


def gridbus(vhost: str, *args: str) -> str:
    env = {**os.environ, "GRIDBUS_AMQP_URI": f"{AMQP}/{quote(vhost, safe='')}"}
    done = subprocess.run([sys.executable, "-m", "services.cli", "levels", *args], env=env, capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def deployments(environment):
    """Vhosts for this run; the link user has only what shared/broker_users.py grants a parent's
    federation link: it may read gridbus.levels, through the link's own queue, and nothing else."""
    from shared import broker_users
    from shared.levels import Call, Management
    global AMQP
    AMQP, base = environment["GRIDBUS_AMQP_URI"].rsplit("/", 1)
    names = {level: f"{base}-{level}" for level in (*COUNTIES, "city", "province")}
    grant = broker_users.link_grant(f"{base}-")
    link_user, link_password = grant.user, uuid.uuid4().hex
    with Management(settings().broker_management_url) as api:
        api.apply([Call("PUT", f"/api/users/{quote(link_user, safe='')}", {"password": link_password, "tags": ""})])
        for vhost in names.values():
            v = quote(vhost, safe="")
            api.apply([Call("PUT", f"/api/vhosts/{v}", {}),
                       Call("PUT", f"/api/permissions/{v}/guest", {"configure": ".*", "write": ".*", "read": ".*"}),
                       *broker_users.permission_plan(vhost, grant)])
            gridbus(vhost, "setup")
    host = AMQP.rsplit("@", 1)[-1]
    link = lambda child: f"amqp://{link_user}:{link_password}@{host}/{quote(names[child], safe='')}"  # noqa: E731
    for county in COUNTIES:
        gridbus(names["city"], "link", county, link(county))
    gridbus(names["province"], "link", "city", link("city"))
    yield SimpleNamespace(names=names, link_user=link_user, grant=grant)
    for vhost in names.values():
        subprocess.run(["rabbitmqctl", "-q", "delete_vhost", vhost], capture_output=True, timeout=60)
    subprocess.run(["rabbitmqctl", "-q", "delete_user", link_user], capture_output=True, timeout=60)


def management() -> httpx.Client:
    url = httpx.URL(settings().broker_management_url)
    return httpx.Client(base_url=f"{url.scheme}://{url.host}:{url.port}", auth=(url.username, url.password))


def links_running(vhost: str, expected: int):
    """The deployment's running links, when there are exactly `expected` of them."""
    with management() as api:
        links = api.get(f"/api/federation-links/{quote(vhost, safe='')}").json()
    running = [link for link in links if link.get("status") == "running"]
    return running if len(running) == expected else None


def publish(vhost: str, deployment: str, n: int) -> list[str]:
    """What a deployment's outbox relay does: each envelope to its own gridbus.events."""
    ids = []
    with kombu.Connection(f"{AMQP}/{quote(vhost, safe='')}") as conn:
        producer = conn.Producer()
        for i in range(n):
            row = SimpleNamespace(event_id=uuid.uuid4(), type="incidents.incident.reported",
                                  source=f"/gridbus/{deployment}/incidents", subject=f"incidents/{uuid.uuid4()}",
                                  time=datetime.now(timezone.utc), data={"n": i}, sequence=i + 1, subject_sequence=1)
            publish_row(producer, row, exchange="gridbus.events", routing_key=row.type, user_id="guest")
            ids.append(str(row.event_id))
    return ids


class Subscriber:
    """A provincial system: a durable queue on the province's gridbus.levels."""

    def __init__(self, vhost: str):
        self.vhost, self.queue, self.seen = vhost, f"province-watch-{uuid.uuid4().hex[:6]}", []
        with kombu.Connection(f"{AMQP}/{quote(vhost, safe='')}") as conn:
            ch = conn.channel()
            ch.queue_declare(self.queue, durable=True, auto_delete=False)
            ch.queue_bind(self.queue, "gridbus.levels", "#")

    def take(self) -> list[dict]:
        with kombu.Connection(f"{AMQP}/{quote(self.vhost, safe='')}") as conn:
            ch = conn.channel()
            while (message := ch.basic_get(self.queue)) is not None:
                self.seen.append(json.loads(message.body))
                ch.basic_ack(message.delivery_tag)
        return self.seen


def test_the_province_receives_each_county_event_once_with_its_envelope_unchanged(deployments):
    names = deployments.names
    province = Subscriber(names["province"])
    wait_for(lambda: links_running(names["city"], 2), 30)
    wait_for(lambda: links_running(names["province"], 1), 30)
    sent = {county: publish(names[county], county, 5) for county in COUNTIES}
    sent["city"] = publish(names["city"], "city", 3)
    everything = {i for ids in sent.values() for i in ids}

    seen = wait_for(lambda: (s := province.take()) and {e["id"] for e in s} >= everything and s, 30)
    ids = [e["id"] for e in seen]
    assert len(ids) == len(set(ids)) == len(everything)                     # once each, none extra
    for county, county_ids in sent.items():
        from_it = [e for e in seen if e["id"] in set(county_ids)]
        assert {e["source"] for e in from_it} == {f"/gridbus/{county}/incidents"}   # who published
        assert [int(e["sequence"]) for e in from_it] == list(range(1, len(county_ids) + 1))  # in order
    assert all(e["specversion"] == "1.0" and e["type"] == "incidents.incident.reported" for e in seen)


def test_a_county_event_never_reaches_the_city_services_own_bus(deployments):
    """The city's dispatch and credit consume gridbus.events: a county's case is not theirs."""
    names = deployments.names
    with kombu.Connection(f"{AMQP}/{quote(names['city'], safe='')}") as conn:
        ch = conn.channel()
        ch.queue_declare("city-services", durable=False, auto_delete=False, exclusive=False)
        ch.queue_bind("city-services", "gridbus.events", "#")
    wait_for(lambda: links_running(names["city"], 2), 30)
    province = Subscriber(names["province"])
    county_ids = publish(names["county-a"], "county-a", 3)
    marker = publish(names["city"], "city", 1)          # published after the county's, on the city's bus
    # The province has both: the county's came through the city, so the city has handled them.
    wait_for(lambda: {e["id"] for e in province.take()} >= {*county_ids, *marker}, 30)
    with kombu.Connection(f"{AMQP}/{quote(names['city'], safe='')}") as conn:
        ch = conn.channel()
        got = []
        while (message := ch.basic_get("city-services")) is not None:
            got.append(json.loads(message.body)["id"])
        ch.queue_delete("city-services")
    assert got == marker


def test_a_link_that_goes_down_delivers_everything_when_it_comes_back(deployments):
    names, user = deployments.names, deployments.link_user
    province = Subscriber(names["province"])
    wait_for(lambda: links_running(names["city"], 2), 30)
    before = publish(names["county-b"], "county-b", 2)
    wait_for(lambda: {e["id"] for e in province.take()} >= set(before), 30)

    # The link from county-b goes down: its user loses county-b, and its connection is closed (again
    # until the link is down: the management API lists a connection only once its stats are in).
    ctl("set_permissions", "-p", names["county-b"], user, "^$", "^$", "^$")

    def county_b_link_down():
        with management() as api:
            for c in api.get("/api/connections").json():
                if c.get("user") == user and c.get("vhost") == names["county-b"]:
                    api.delete(f"/api/connections/{quote(c['name'], safe='')}")
        return links_running(names["city"], 1)
    wait_for(county_b_link_down, 60, interval=1)
    during = publish(names["county-b"], "county-b", 5)      # kept in county-b, in the link's queue

    from shared import broker_users
    from shared.levels import Management
    with Management(settings().broker_management_url) as api:   # the link user's permissions again
        api.apply(broker_users.permission_plan(names["county-b"], deployments.grant))
    wait_for(lambda: links_running(names["city"], 2), 30)
    seen = wait_for(lambda: (s := province.take()) and {e["id"] for e in s} >= {*before, *during} and s, 30)
    ids = [e["id"] for e in seen]
    assert sorted(ids) == sorted({*before, *during})       # nothing lost, nothing twice
    assert gridbus(names["city"], "status").count("running") == 2
