"""One log format for every process: a JSON object a line, with the trace and span ids of the
span in progress (shared/observability.py), so a log line leads to its trace and back."""
import json
import logging
from datetime import datetime, timezone

from shared.config import settings


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {"time": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
               "level": record.levelname, "logger": record.name, "message": record.getMessage()}
        from shared.observability import trace_ids
        ids = trace_ids()
        if ids:
            out["trace_id"], out["span_id"] = ids
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, ensure_ascii=False)


def setup_logging() -> None:
    root = logging.getLogger()
    root.setLevel(settings().log_level)
    if not any(isinstance(h.formatter, JsonFormatter) for h in root.handlers):
        handler = logging.StreamHandler()
        handler.setFormatter(JsonFormatter())
        root.handlers = [handler]
