"""What every gridbus process tells about itself: Prometheus metrics, OpenTelemetry traces, and
(shared/logs.py) JSON logs carrying the trace id.

- Metrics: `start(process)` serves /metrics on GRIDBUS_METRICS_PORT (by default a port of its
  own per process, services/registry.py): gRPC calls by method and status with latency
  histograms, the outbox relay's backlog, publications and commit-to-publish lag, events
  consumed by handler and outcome with their handling time, dead-lettered events, and the
  database connection pools' use.
- Traces: one trace follows a report from its gRPC call through the outbox (the row keeps the
  W3C `traceparent` of the transaction that wrote it), the relay's publication (the event carries
  it as the CloudEvents distributed-tracing extension attribute `traceparent`), every consumer
  (a span whose parent is the event's), and whatever that consumer writes to its own outbox.
  Spans are exported over OTLP/HTTP only when GRIDBUS_OTLP_ENDPOINT names a collector, and to
  GRIDBUS_TRACE_FILE as JSON lines when that is set (tests read it).
"""
from __future__ import annotations

import contextlib
import json
import logging
import threading
import time
from typing import Iterator, Sequence

import grpc
from opentelemetry import trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import (BatchSpanProcessor, SimpleSpanProcessor, SpanExporter,
                                            SpanExportResult)
from opentelemetry.trace import SpanKind, Status, StatusCode
from opentelemetry.trace.propagation.tracecontext import TraceContextTextMapPropagator
from prometheus_client import REGISTRY, Counter, Gauge, Histogram, start_http_server
from prometheus_client.core import GaugeMetricFamily

log = logging.getLogger(__name__)

LATENCY_BUCKETS = (.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30)

GRPC_CALLS = Counter("gridbus_grpc_server_calls", "gRPC calls answered, by method and status code",
                     ["method", "code"])
GRPC_SECONDS = Histogram("gridbus_grpc_server_call_seconds", "gRPC call latency, by method", ["method"],
                         buckets=LATENCY_BUCKETS)
OUTBOX_PUBLISHED = Counter("gridbus_outbox_published", "events the relay published (confirmed)", ["source"])
OUTBOX_LAG = Histogram("gridbus_outbox_lag_seconds",
                       "from an outbox row's write (in its transaction, just before the commit) to its "
                       "publication confirmed by the broker", ["source"], buckets=LATENCY_BUCKETS)
OUTBOX_BACKLOG = Gauge("gridbus_outbox_backlog", "unpublished outbox rows at the relay's last look", ["source"])
EVENTS_CONSUMED = Counter("gridbus_events_consumed", "events handled, by handler and outcome (ok, error)",
                          ["handler", "outcome"])
EVENT_SECONDS = Histogram("gridbus_event_handler_seconds", "time to handle one event, by handler", ["handler"],
                          buckets=LATENCY_BUCKETS)
DEAD_LETTERED = Counter("gridbus_events_dead_lettered",
                        "events sent to a dead-letter queue: malformed or not from their owner's broker user "
                        "(impostor) at once, or failed on their last allowed delivery", ["queue", "reason"])


class _PoolCollector:
    """The database pools of this process (shared.db's engines): size, checked out, overflow."""

    def describe(self):  # without it, registering would collect, importing SQLAlchemy at import time
        return [GaugeMetricFamily(name, "", labels=["database"]) for name in
                ("gridbus_db_pool_size", "gridbus_db_pool_checked_out", "gridbus_db_pool_overflow")]

    def collect(self):
        from shared.db import _engines
        size = GaugeMetricFamily("gridbus_db_pool_size", "connections a pool keeps", labels=["database"])
        used = GaugeMetricFamily("gridbus_db_pool_checked_out", "connections in use", labels=["database"])
        over = GaugeMetricFamily("gridbus_db_pool_overflow", "connections beyond the pool's size", labels=["database"])
        for url, engine in list(_engines.items()):
            pool, name = engine.pool, engine.url.database or "?"
            for family, read in ((size, "size"), (used, "checkedout"), (over, "overflow")):
                value = getattr(pool, read, None)
                if callable(value):
                    family.add_metric([name], max(value(), 0))
        yield from (size, used, over)


REGISTRY.register(_PoolCollector())

# --- traces ----------------------------------------------------------------------------------

_propagator = TraceContextTextMapPropagator()
tracer = trace.get_tracer("gridbus")


def current_traceparent() -> str | None:
    """The W3C traceparent of the span in progress (None outside any)."""
    carrier: dict[str, str] = {}
    _propagator.inject(carrier)
    return carrier.get("traceparent")


def parent_context(traceparent: str | None) -> Context:
    return _propagator.extract({"traceparent": traceparent}) if traceparent else Context()


def trace_ids() -> tuple[str, str] | None:
    """(trace id, span id) in hex of the span in progress, for logs."""
    ctx = trace.get_current_span().get_span_context()
    return (f"{ctx.trace_id:032x}", f"{ctx.span_id:016x}") if ctx.is_valid else None


class JsonLinesExporter(SpanExporter):
    """Appends finished spans to a file, one JSON object a line."""

    def __init__(self, path: str, process: str):
        self.path, self.process, self._lock = path, process, threading.Lock()

    def export(self, spans: Sequence[ReadableSpan]) -> SpanExportResult:
        lines = []
        for s in spans:
            ctx, parent = s.get_span_context(), s.parent
            lines.append(json.dumps({
                "process": self.process, "name": s.name, "kind": s.kind.name,
                "trace_id": f"{ctx.trace_id:032x}", "span_id": f"{ctx.span_id:016x}",
                "parent_id": f"{parent.span_id:016x}" if parent else None,
                "start": s.start_time, "end": s.end_time, "status": s.status.status_code.name,
                "attributes": dict(s.attributes or {})}, default=str))
        with self._lock, open(self.path, "a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in lines))
        return SpanExportResult.SUCCESS


@contextlib.contextmanager
def consuming(event: dict, handler: str) -> Iterator[None]:
    """A consumer's span (child of the event's traceparent), its timing and its outcome."""
    started = time.perf_counter()
    with tracer.start_as_current_span(f"consume {event.get('type')}", context=parent_context(event.get("traceparent")),
                                      kind=SpanKind.CONSUMER,
                                      attributes={"gridbus.handler": handler, "cloudevents.event_id": event.get("id", ""),
                                                  "cloudevents.event_type": event.get("type", "")}) as span:
        try:
            yield
        except BaseException as exc:
            EVENTS_CONSUMED.labels(handler, "error").inc()
            span.set_status(Status(StatusCode.ERROR, type(exc).__name__))
            raise
        else:
            EVENTS_CONSUMED.labels(handler, "ok").inc()
            log.debug("event %s (%s) handled by %s", event.get("id"), event.get("type"), handler)
        finally:
            EVENT_SECONDS.labels(handler).observe(time.perf_counter() - started)


@contextlib.contextmanager
def publishing(source: str, type_: str, event_id: str, traceparent: str | None) -> Iterator[str | None]:
    """The relay's span for one event, child of the transaction that wrote it; yields the
    traceparent the event carries (None when its row had none)."""
    if not traceparent:
        yield None
        return
    with tracer.start_as_current_span(f"publish {type_}", context=parent_context(traceparent), kind=SpanKind.PRODUCER,
                                      attributes={"cloudevents.event_id": event_id, "cloudevents.event_type": type_,
                                                  "gridbus.source": source}):
        yield current_traceparent()


# --- gRPC --------------------------------------------------------------------------------------

class ServerObserver(grpc.ServerInterceptor):
    """Counts and times every gRPC call by method and status, in a server span whose parent is
    the caller's `traceparent` metadata when it sends one. Health checks are left out."""

    def intercept_service(self, continuation, details):
        handler = continuation(details)
        if handler is None or details.method.startswith("/grpc.health"):
            return handler
        method = details.method.lstrip("/")
        metadata = dict(details.invocation_metadata or ())
        parent = parent_context(metadata.get("traceparent"))

        def observed(behavior, streams_out: bool):
            def call(request, context):
                started = time.perf_counter()
                span_cm = tracer.start_as_current_span(method, context=parent, kind=SpanKind.SERVER,
                                                       attributes={"rpc.system": "grpc", "rpc.method": method})
                span = span_cm.__enter__()
                code = "OK"
                try:
                    if streams_out:
                        yield from behavior(request, context)
                    else:
                        return behavior(request, context)
                except BaseException as exc:
                    got = context.code() if hasattr(context, "code") else None
                    code = got.name if isinstance(got, grpc.StatusCode) else "UNKNOWN"
                    if isinstance(exc, GeneratorExit):
                        code = "CANCELLED"
                    span.set_status(Status(StatusCode.ERROR, code))
                    raise
                finally:
                    span.set_attribute("rpc.grpc.status_code", code)
                    span_cm.__exit__(None, None, None)
                    GRPC_CALLS.labels(method, code).inc()
                    GRPC_SECONDS.labels(method).observe(time.perf_counter() - started)

            if streams_out:
                return call

            def unary(request, context):  # `call` is a generator function only for streams
                gen = call(request, context)
                try:
                    next(gen)
                except StopIteration as done:
                    return done.value
            return unary

        if handler.unary_unary:
            return grpc.unary_unary_rpc_method_handler(observed(handler.unary_unary, False),
                                                       handler.request_deserializer, handler.response_serializer)
        if handler.stream_unary:
            return grpc.stream_unary_rpc_method_handler(observed(handler.stream_unary, False),
                                                        handler.request_deserializer, handler.response_serializer)
        if handler.unary_stream:
            return grpc.unary_stream_rpc_method_handler(observed(handler.unary_stream, True),
                                                        handler.request_deserializer, handler.response_serializer)
        return grpc.stream_stream_rpc_method_handler(observed(handler.stream_stream, True),
                                                     handler.request_deserializer, handler.response_serializer)


# --- a process's start -------------------------------------------------------------------------

_started: str | None = None


def start(process: str, settings, default_metrics_port: int) -> int | None:
    """Traces and the metrics endpoint for this process; returns the metrics port (None when it
    could not listen: the process runs on without metrics rather than not at all)."""
    global _started
    if _started:
        return None
    _started = process
    provider = TracerProvider(resource=Resource.create({"service.name": process}))
    if settings.otlp_endpoint:
        from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter
        provider.add_span_processor(BatchSpanProcessor(OTLPSpanExporter(endpoint=f"{settings.otlp_endpoint}/v1/traces")))
    if settings.trace_file:
        provider.add_span_processor(SimpleSpanProcessor(JsonLinesExporter(settings.trace_file, process)))
    trace.set_tracer_provider(provider)
    port = default_metrics_port if settings.metrics_port is None else settings.metrics_port
    try:
        server, _ = start_http_server(port)
    except OSError as exc:
        log.warning("%s: no metrics endpoint, port %d: %s", process, port, exc)
        return None
    bound = server.server_port
    log.info("%s: Prometheus metrics on port %d (/metrics)", process, bound)
    return bound
