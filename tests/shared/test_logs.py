"""Logs are JSON lines carrying the trace and span of what they were said in."""
import json
import logging

from opentelemetry.sdk.trace import TracerProvider

from shared.logs import JsonFormatter


def record(message: str, *args) -> logging.LogRecord:
    return logging.LogRecord("gridbus.test", logging.INFO, __file__, 1, message, args, None)


def test_a_line_inside_a_span_carries_its_trace_and_span_ids():
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        line = json.loads(JsonFormatter().format(record("incident %s routed: 报告", "42")))
    ctx = span.get_span_context()
    assert line["message"] == "incident 42 routed: 报告" and line["level"] == "INFO" and line["logger"] == "gridbus.test"
    assert line["trace_id"] == f"{ctx.trace_id:032x}" and line["span_id"] == f"{ctx.span_id:016x}"


def test_a_line_outside_any_span_has_no_trace_id():
    line = json.loads(JsonFormatter().format(record("idle")))
    assert "trace_id" not in line and line["message"] == "idle"
