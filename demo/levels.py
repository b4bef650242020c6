"""The demo's three levels (`make run RUN_ARGS=--levels`): the demo city's bus is a county's; a
city and a province are two more virtual hosts of the same broker, joined by RabbitMQ's
federation plugin as `gridbus levels` joins real deployments; a provincial subscriber counts
what reaches it, by source."""
from __future__ import annotations

import json
from collections import Counter
from urllib.parse import quote, urlsplit

import kombu

from shared import broker_users, levels, tls

LEVELS = ("city", "province")


class Province:
    def __init__(self, amqp_uri: str, management_url: str, link_uri: str):
        """`link_uri`: the link user's (shared/broker_users.py), which the parents' federation
        links read their children's gridbus.levels with, and may do nothing else."""
        parts = urlsplit(amqp_uri)
        own = levels.vhost_of(amqp_uri)
        self.base = f"{parts.scheme}://{parts.netloc}"
        self.vhosts = {"county": own, **{level: f"gridbus-demo-{level}" for level in LEVELS}}
        with levels.Management(management_url) as api:
            for level in LEVELS:
                v = quote(self.vhosts[level], safe="")
                api.apply([levels.Call("PUT", f"/api/vhosts/{v}", {}),
                           levels.Call("PUT", f"/api/permissions/{v}/{quote(parts.username or 'guest')}",
                                       {"configure": ".*", "write": ".*", "read": ".*"})])
            for vhost in self.vhosts.values():
                api.apply(levels.setup_plan(vhost))
            # The link user has its grant in the county's vhost already (`gridbus broker users`); the city's too.
            link_user, link_password = broker_users.credentials(link_uri)
            prefix = link_user.removesuffix(broker_users.LINK)
            api.apply(broker_users.permission_plan(self.vhosts["city"], broker_users.link_grant(prefix)))
            api.apply(levels.link_plan(self.vhosts["city"], "county-demo",
                                       broker_users.uri_for(self._uri("county"), link_user, link_password)))
            api.apply(levels.link_plan(self.vhosts["province"], "city-demo",
                                       broker_users.uri_for(self._uri("city"), link_user, link_password)))
        self.queue = "gridbus-demo-province-watch"
        with tls.amqp_connection(self._uri("province")) as conn:
            ch = conn.channel()
            ch.queue_delete(self.queue)
            ch.queue_declare(self.queue, durable=True, auto_delete=False)
            ch.queue_bind(self.queue, levels.LEVELS_EXCHANGE, "#")
        print(f"== three levels: this demo's bus is a county's, federated to {self.vhosts['city']} and on to "
              f"{self.vhosts['province']}")

    def _uri(self, level: str) -> str:
        return f"{self.base}/{quote(self.vhosts[level], safe='')}"

    def report(self) -> None:
        seen: Counter = Counter()
        with tls.amqp_connection(self._uri("province")) as conn:
            ch = conn.channel()
            while (m := ch.basic_get(self.queue)) is not None:
                seen[json.loads(m.body)["source"]] += 1
                ch.basic_ack(m.delivery_tag)
        print(f"== the province's subscriber received {sum(seen.values())} events through the city:")
        for source, n in sorted(seen.items()):
            print(f"   {source:<40} {n}")
