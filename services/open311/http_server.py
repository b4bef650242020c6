"""Open311 GeoReport v2 over HTTP (JSON and XML), mapped onto the incidents operations, so
existing Open311 apps can report to gridbus and read back status.

Run: python -m services.open311.http_server (port GRIDBUS_OPEN311_HTTP_PORT, default 8311).
POST needs an api_key from GRIDBUS_OPEN311_API_KEYS ("key=client,key2=client2"); reads are
public and show no reporter. Health: GET /healthz."""
from __future__ import annotations

import json
import logging
import signal
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

from services import registry
from services.incidents import operations as incidents
from services.open311 import mapping
from shared import auth
from shared.auth import Principal
from shared.config import settings
from shared.errors import DomainError, NotFound, PermissionDenied
from shared.logs import setup_logging
from shared.timefmt import parse_iso, utcnow

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024
DEFAULT_WINDOW = timedelta(days=90)  # the spec's default when no dates are given
HTTP_STATUS = {"INVALID_ARGUMENT": 400, "UNAUTHENTICATED": 401, "PERMISSION_DENIED": 403, "NOT_FOUND": 404,
               "ALREADY_EXISTS": 409, "FAILED_PRECONDITION": 409, "ABORTED": 409}
READER = Principal("open311", auth.SERVICE, ())


def _first(query: dict, key: str) -> str | None:
    values = query.get(key)
    return values[0] if values else None


class Open311Handler(BaseHTTPRequestHandler):
    server_version = "gridbus-open311/1"

    def log_message(self, fmt, *args):  # requests go to our log, not stderr
        log.info("%s %s", self.address_string(), fmt % args)

    # --- plumbing --------------------------------------------------------------------------

    def _send(self, status: int, fmt: str, root: str, body) -> None:
        data = json.dumps(body, ensure_ascii=False).encode() if fmt == "json" else mapping.to_xml(root, body)
        self.send_response(status)
        self.send_header("Content-Type", mapping.FORMATS[fmt])
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _error(self, status: int, fmt: str, message: str) -> None:
        self._send(status, fmt, "errors", [{"code": status, "description": message}])

    def _handle(self, method: str) -> None:
        url = urlsplit(self.path)
        if url.path == "/healthz":
            try:
                incidents.health()
                self.send_response(200)
            except Exception:
                self.send_response(503)
            self.send_header("Content-Length", "0")
            self.end_headers()
            return
        routed = mapping.route(url.path)
        if routed is None:
            self._error(404, "json", "no such resource; see /open311/v2/discovery.json")
            return
        resource, ident, fmt = routed
        try:
            query = parse_qs(url.query)
            if method == "POST":
                if resource != "requests" or ident:
                    self._error(405, fmt, "only POST /requests is allowed")
                    return
                self._post_request(fmt, query)
            else:
                getattr(self, f"_get_{resource}")(fmt, ident, query)
        except DomainError as exc:
            self._error(HTTP_STATUS.get(exc.code, 500), fmt, exc.message)
        except Exception:
            log.exception("open311 %s %s failed", method, url.path)
            self._error(500, fmt, "internal error; it has been logged")

    def do_GET(self):
        self._handle("GET")

    def do_POST(self):
        self._handle("POST")

    # --- resources -------------------------------------------------------------------------

    def _get_discovery(self, fmt, ident, query):
        base = f"http://{self.headers.get('Host', 'localhost')}/open311/v2"
        self._send(200, fmt, "discovery", {
            "changeset": utcnow().date().isoformat(), "contact": "your city's gridbus operators",
            "key_service": "ask the operators for an api_key",
            "endpoints": [{"specification": mapping.SPEC, "url": base, "changeset": "2026-11-24",
                           "type": "production", "formats": list(v.split(";")[0] for v in mapping.FORMATS.values())}]})

    def _get_services(self, fmt, ident, query):
        categories = incidents.list_categories(READER)
        if ident is None:
            self._send(200, fmt, "services", mapping.service_list(categories))
            return
        if not any(c.code == ident and c.active for c in categories):
            raise NotFound(f"no service {ident}")
        self._send(200, fmt, "service_definition", mapping.service_definition(ident))

    def _get_requests(self, fmt, ident, query):
        names = {c.code: c.name for c in incidents.list_categories(READER, include_inactive=True)}
        ids = [ident] if ident else mapping.split_ids(_first(query, "service_request_id"))
        if ids:
            out = []
            for i in ids[:mapping.MAX_RESULTS]:
                try:
                    incident, history = incidents.get(READER, i)
                except NotFound:
                    if ident:
                        raise
                    continue
                notes = next((h.note for h in reversed(history) if h.note), None)
                out.append(mapping.request_view(incident, names, notes))
            self._send(200, fmt, "service_requests", out)
            return
        end = parse_iso(_first(query, "end_date"), "end_date") or utcnow()
        start = parse_iso(_first(query, "start_date"), "start_date") or end - DEFAULT_WINDOW
        filters = incidents.Filters(statuses=mapping.parse_statuses(_first(query, "status")),
                                    category_code=_first(query, "service_code"),
                                    reported_from=start, reported_to=end)
        out, token = [], ""
        while len(out) < mapping.MAX_RESULTS:
            page, token = incidents.list_incidents(READER, filters, incidents.MAX_PAGE, token)
            out += [mapping.request_view(i, names, None) for i in page]
            if not token:
                break
        self._send(200, fmt, "service_requests", out[:mapping.MAX_RESULTS])

    def _post_request(self, fmt, query):
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY_BYTES:
            self._error(413, fmt, f"request body over {MAX_BODY_BYTES} bytes")
            return
        form = {k: v[0] for k, v in parse_qs(self.rfile.read(length).decode("utf-8", "replace")).items()}
        client = settings().open311_api_keys.get(form.get("api_key") or _first(query, "api_key") or "")
        if client is None:
            raise PermissionDenied("a valid api_key is required to submit requests")
        caller = Principal(f"open311:{client}", auth.SERVICE, ())
        args = mapping.report_args(form, client, self.headers.get("Idempotency-Key"))
        result = incidents.report(caller, **args)
        self._send(201 if not result.replayed else 200, fmt, "service_requests",
                   [{"service_request_id": result.incident.id, "service_notice": "", "account_id": ""}])


def main() -> None:
    setup_logging()
    server = ThreadingHTTPServer(("0.0.0.0", registry.port("open311")), Open311Handler)
    server.daemon_threads = True
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    threading.Thread(target=server.serve_forever, daemon=True).start()
    log.info("Open311 GeoReport v2 on port %d", server.server_address[1])
    stop.wait()
    server.shutdown()


if __name__ == "__main__":
    main()
