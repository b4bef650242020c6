"""The subscriptions service's gRPC server.

Run: python -m services.subscriptions.grpc_server (port GRIDBUS_SUBSCRIPTIONS_GRPC_PORT).
It has no nameko side: nothing inside gridbus calls it, and it consumes no events."""
from __future__ import annotations

from gridbus.subscriptions.v1 import subscriptions_pb2 as pb
from gridbus.subscriptions.v1 import subscriptions_pb2_grpc as pb_grpc
from services import registry
from services.subscriptions import operations as ops
from shared.grpc_support import serve, time_field, timestamp, unary
from shared.logs import setup_logging

SERVICE_NAME = "gridbus.subscriptions.v1.SubscriptionService"


def subscription_pb(v: ops.SubscriptionView) -> pb.Subscription:
    return pb.Subscription(name=v.name, queue=v.queue, dead_letter_queue=v.dead_letter_queue,
                           patterns=v.patterns, created_by=v.created_by, created_at=timestamp(v.created_at))


class SubscriptionServicer(pb_grpc.SubscriptionServiceServicer):
    @unary
    def Subscribe(self, request, context, caller):
        return subscription_pb(ops.subscribe(caller, request.name, list(request.patterns)))

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


def main() -> None:
    registry.start("subscriptions-grpc")
    setup_logging()
    serve(SERVICE_NAME, pb_grpc.add_SubscriptionServiceServicer_to_server, SubscriptionServicer(),
          registry.port("subscriptions"))


if __name__ == "__main__":
    main()
