"""Who may call the subscriptions service's entry points (shared/access.py)."""
from __future__ import annotations

from shared.access import ANY, OWN_DISTRICT, OWN_RECORD, Table, allow

# An organisation manages its own subscriptions, with its own subscriber token.
OWN_SUBSCRIPTIONS = allow("create, list, replay into or delete its own subscriptions", subscriber=OWN_RECORD)
ORGANISATIONS = allow("register or list organisations within one's district", admin=OWN_DISTRICT)

TABLE = Table(
    "subscriptions",
    grpc={"Subscribe": OWN_SUBSCRIPTIONS, "ListSubscriptions": OWN_SUBSCRIPTIONS, "Unsubscribe": OWN_SUBSCRIPTIONS,
          "Replay": OWN_SUBSCRIPTIONS, "RegisterOrganisation": ORGANISATIONS, "ListOrganisations": ORGANISATIONS},
    rpc={"health": allow("check health", public=ANY)},
)
