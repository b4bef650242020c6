"""The subscriptions service's nameko side: the live delivery of events into subscribers' queues
(delivery.py), run in a managed thread, and health.

Run: python -m services.nameko_run services.subscriptions.service"""
from __future__ import annotations

from nameko.extensions import DependencyProvider

from services.subscriptions import access
from services.subscriptions.delivery import Delivery
from shared.access import rpc
from shared.errors import FailedPrecondition


class DeliveryRunner(DependencyProvider):
    """Runs the delivery for as long as the container runs."""

    def setup(self):
        self.delivery = Delivery(self.container.config["AMQP_URI"])

    def start(self):
        self.container.spawn_managed_thread(self.delivery.run, identifier="subscriptions-delivery")

    def stop(self):
        self.delivery.stop()

    def kill(self):
        self.delivery.stop()

    def get_dependency(self, worker_ctx):
        return self.delivery


class SubscriptionsService:
    name = "subscriptions"
    access = access.TABLE

    delivery = DeliveryRunner()

    @rpc
    def health(self) -> dict:
        # Serving once the delivery consumes: a subscription made after this sees every later event.
        if not self.delivery.started.is_set():
            raise FailedPrecondition("the delivery is not consuming yet")
        return {"status": "SERVING"}
