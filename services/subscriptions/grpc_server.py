"""The subscriptions service's gRPC server.

Run: python -m services.subscriptions.grpc_server (port GRIDBUS_SUBSCRIPTIONS_GRPC_PORT).
Its nameko side (service.py) delivers the events; nothing inside gridbus calls either."""
from __future__ import annotations

from gridbus.subscriptions.v1 import subscriptions_pb2 as pb
from gridbus.subscriptions.v1 import subscriptions_pb2_grpc as pb_grpc
from services import registry
from services.subscriptions import access, operations as ops
from services.subscriptions import organisations as orgs
from shared.grpc_support import serve, time_field, timestamp, unary
from shared.logs import setup_logging

SERVICE_NAME = "gridbus.subscriptions.v1.SubscriptionService"


def subscription_pb(v: ops.SubscriptionView) -> pb.Subscription:
    return pb.Subscription(name=v.name, queue=v.queue, dead_letter_queue=v.dead_letter_queue,
                           patterns=v.patterns, created_by=v.created_by, created_at=timestamp(v.created_at),
                           organisation=v.organisation, scope=v.scope, grants=v.grants)


def organisation_pb(v: orgs.OrganisationView) -> pb.Organisation:
    return pb.Organisation(id=v.id, name=v.name, scope=v.scope, grants=v.grants, active=v.active,
                           registered_by=v.registered_by, registered_at=timestamp(v.registered_at))


class SubscriptionServicer(pb_grpc.SubscriptionServiceServicer):
    access = access.TABLE

    @unary
    def Subscribe(self, request, context, caller):
        return subscription_pb(ops.subscribe(caller, request.name, list(request.patterns), list(request.scope),
                                             list(request.grants)))

    @unary
    def ListSubscriptions(self, request, context, caller):
        return pb.ListSubscriptionsResponse(subscriptions=[subscription_pb(s) for s in ops.list_subscriptions(caller)])

    @unary
    def Unsubscribe(self, request, context, caller):
        ops.unsubscribe(caller, request.name)
        return pb.UnsubscribeResponse()

    @unary
    def Replay(self, request, context, caller):
        n = ops.replay(caller, request.name, source=request.source or None,
                       from_sequence=request.from_sequence or None, since=time_field(request, "since"))
        return pb.ReplayResponse(published=n)

    @unary
    def RegisterOrganisation(self, request, context, caller):
        return organisation_pb(orgs.register(caller, request.id, request.name, list(request.scope),
                                             list(request.grants), active=not request.deactivate))

    @unary
    def ListOrganisations(self, request, context, caller):
        return pb.ListOrganisationsResponse(organisations=[organisation_pb(o) for o in orgs.list_(caller)])


def main() -> None:
    registry.start("subscriptions-grpc")
    setup_logging()
    serve(SERVICE_NAME, pb_grpc.add_SubscriptionServiceServicer_to_server, SubscriptionServicer(),
          registry.port("subscriptions"))


if __name__ == "__main__":
    main()
