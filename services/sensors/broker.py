"""Each device is its own broker user: RabbitMQ's MQTT plugin lets it publish to its own topics
(sensors/<id>/alarm, sensors/<id>/heartbeat on amq.topic) and nowhere else, and nothing more."""
from __future__ import annotations

import re
import secrets
from urllib.parse import quote

from shared.levels import Call, Management, vhost_of

MQTT_EXCHANGE = "amq.topic"


def username(device_id: str) -> str:
    return f"sensor-{device_id}"


def mqtt_username(device_id: str, vhost: str) -> str:
    """What the device sends as its MQTT user name: the plugin reads `vhost:user`."""
    return username(device_id) if vhost == "/" else f"{vhost}:{username(device_id)}"


def account_plan(device_id: str, vhost: str, password: str) -> list[Call]:
    user, v = quote(username(device_id), safe=""), quote(vhost, safe="")
    own_topics = rf"^sensors\.{re.escape(device_id)}\.(alarm|heartbeat)$"
    return [
        Call("PUT", f"/api/users/{user}", {"password": password, "tags": ""}),
        # Write to amq.topic only; configure and read nothing (a publishing MQTT client needs no queue).
        Call("PUT", f"/api/permissions/{v}/{user}", {"configure": "^$", "write": rf"^{re.escape(MQTT_EXCHANGE)}$",
                                                      "read": "^$"}),
        Call("PUT", f"/api/topic-permissions/{v}/{user}", {"exchange": MQTT_EXCHANGE, "write": own_topics,
                                                            "read": "^$"}),
    ]


def provision(management_url: str, amqp_uri: str, device_id: str) -> tuple[str, str]:
    """Creates (or resets) the device's broker account: (MQTT user name, password). The password
    is shown once and kept nowhere by gridbus."""
    password = secrets.token_urlsafe(24)
    vhost = vhost_of(amqp_uri)
    with Management(management_url) as api:
        api.apply(account_plan(device_id, vhost, password))
    return mqtt_username(device_id, vhost), password


def revoke(management_url: str, device_id: str) -> None:
    with Management(management_url) as api:
        api.apply([Call("DELETE", f"/api/users/{quote(username(device_id), safe='')}")])
