"""Subscriptions for outside systems: durable queues with dead-lettering, and replay from the event store."""
