"""Open311 GeoReport v2 over HTTP (JSON and XML), mapped onto the incidents operations, so
existing Open311 apps can report to gridbus and read back status. On shared/public_http.py
(Starlette under uvicorn): body, header and rate limits, bounded concurrency, /openapi.json.

POST needs an api_key from GRIDBUS_OPEN311_API_KEYS ("key=client,key2=client2"). Reads are
anonymous and read as the PUBLIC reader, which incidents lets see only the requests submitted
through Open311 (never officers' internal reports) and no history; the gateway shows a fixed
text per state and coordinates rounded to about 10 m (mapping.py), and no reporter. A client
reading with its api_key sees its own requests' exact state and coordinates.

Run: python -m services.open311.http_server (port GRIDBUS_OPEN311_HTTP_PORT, default 8311)."""
from __future__ import annotations

import json
import logging
from datetime import timedelta

from starlette.convertors import Convertor, register_url_convertor
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from services import registry
from services.incidents import domain as incidents_domain
from services.incidents import operations as incidents
from services.open311 import access, mapping
from shared import access as shared_access, auth
from shared.auth import PUBLIC_READER, Principal
from shared.config import settings
from shared.errors import InvalidArgument, NotFound, PermissionDenied
from shared.logs import setup_logging
from shared.public_http import Limits, create_app, serve, threaded
from shared.timefmt import parse_iso, utcnow

log = logging.getLogger(__name__)

MAX_BODY_BYTES = 64 * 1024  # a 4,000-character description in percent-encoded UTF-8 fits
DEFAULT_WINDOW = timedelta(days=90)  # the spec's default when no dates are given
BASE = "/open311/v2"


class FormatConvertor(Convertor):
    """The `.json` or `.xml` that ends every GeoReport v2 path."""
    regex = "json|xml"

    def convert(self, value: str) -> str:
        return value

    def to_string(self, value: str) -> str:
        return value


register_url_convertor("open311_format", FormatConvertor())


def render(status: int, fmt: str, root: str, body, headers: dict | None = None) -> Response:
    data = json.dumps(body, ensure_ascii=False).encode() if fmt == "json" else mapping.to_xml(root, body)
    return Response(data, status_code=status, media_type=mapping.FORMATS[fmt], headers=headers)


def open311_error(path: str, status: int, code: str, message: str, headers: dict | None = None) -> Response:
    """Every error as GeoReport v2 has them: a list of {code, description} with the HTTP status,
    in the format the path asks for (JSON when it asks for none)."""
    fmt = "xml" if path.endswith(".xml") else "json"
    return render(status, fmt, "errors", [{"code": status, "description": message}], headers)


def _params(request: Request) -> dict[str, str]:
    """The query's parameters (the first of a repeated one); NUL characters are refused, as
    PostgreSQL text cannot hold them."""
    params = {k: request.query_params[k] for k in request.query_params}
    _no_nul(params)
    return params


def _no_nul(values: dict[str, str]) -> None:
    for key, value in values.items():
        if "\x00" in key or "\x00" in value:
            raise InvalidArgument(f"{key.replace(chr(0), '')!r} holds a NUL character")


def _client(api_key: str | None) -> str | None:
    return settings().open311_api_keys.get(api_key or "")


def _categories() -> list:
    return incidents.list_categories(PUBLIC_READER, include_inactive=True)


# --- resources -------------------------------------------------------------------------------
# Each docstring's YAML is the route's OpenAPI description (components below).

def discovery(request: Request, body: bytes) -> Response:
    """
    ---
    summary: Where this endpoint is and what it speaks
    parameters: [{$ref: "#/components/parameters/format"}]
    responses:
      200: {$ref: "#/components/responses/ok"}
      429: {$ref: "#/components/responses/error"}
    """
    fmt = request.path_params["format"]
    return render(200, fmt, "discovery", {
        "changeset": utcnow().date().isoformat(), "contact": "your city's gridbus operators",
        "key_service": "ask the operators for an api_key",
        "endpoints": [{"specification": mapping.SPEC, "url": str(request.base_url).rstrip("/") + BASE,
                       "changeset": "2026-11-24", "type": "production",
                       "formats": [v.split(";")[0] for v in mapping.FORMATS.values()]}]})


def services_list(request: Request, body: bytes) -> Response:
    """
    ---
    summary: The services (leaf categories of the incident catalogue), grouped by their parent
    parameters: [{$ref: "#/components/parameters/format"}]
    responses:
      200: {$ref: "#/components/responses/ok"}
      429: {$ref: "#/components/responses/error"}
    """
    _params(request)
    categories = [c for c in _categories() if c.active]
    return render(200, request.path_params["format"], "services", mapping.service_list(categories))


def service_definition(request: Request, body: bytes) -> Response:
    """
    ---
    summary: A service's definition (gridbus asks for no attributes beyond the standard fields)
    parameters:
      - {name: service_code, in: path, required: true, schema: {type: string}}
      - {$ref: "#/components/parameters/format"}
    responses:
      200: {$ref: "#/components/responses/ok"}
      400: {$ref: "#/components/responses/error"}
      404: {$ref: "#/components/responses/error"}
      429: {$ref: "#/components/responses/error"}
    """
    code = request.path_params["service_code"]
    _no_nul({"service_code": code})
    if not any(c.code == code and c.active for c in _categories()):
        raise NotFound(f"no service {code}")
    return render(200, request.path_params["format"], "service_definition", mapping.service_definition(code))


def _views(found: list, client: str | None) -> list[dict]:
    names = {c.code: c.name for c in _categories()}
    own = f"{incidents_domain.OPEN311_REPORTER_PREFIX}{client}" if client else None
    return [mapping.request_view(i, names, own=i.reporter_id == own) for i in found]


def request_one(request: Request, body: bytes) -> Response:
    """
    ---
    summary: One service request
    parameters:
      - {name: service_request_id, in: path, required: true, schema: {type: string, format: uuid}}
      - {$ref: "#/components/parameters/format"}
      - {$ref: "#/components/parameters/api_key_read"}
    responses:
      200: {$ref: "#/components/responses/ok"}
      400: {$ref: "#/components/responses/error"}
      404: {$ref: "#/components/responses/error"}
      429: {$ref: "#/components/responses/error"}
    """
    params = _params(request)
    incident, _ = incidents.get(PUBLIC_READER, request.path_params["service_request_id"])
    return render(200, request.path_params["format"], "service_requests",
                  _views([incident], _client(params.get("api_key"))))


def requests_list(request: Request, body: bytes) -> Response:
    """
    ---
    summary: Service requests submitted through Open311, newest first (at most 1,000)
    description: By ids, or by service, status and the time they were requested (the last 90 days
      when no dates are given).
    parameters:
      - {$ref: "#/components/parameters/format"}
      - {name: service_request_id, in: query, schema: {type: string}, description: "ids, comma-separated"}
      - {name: service_code, in: query, schema: {type: string}}
      - {name: start_date, in: query, schema: {type: string, format: date-time}}
      - {name: end_date, in: query, schema: {type: string, format: date-time}}
      - {name: status, in: query, schema: {type: string}, description: "open, closed, or open,closed"}
      - {$ref: "#/components/parameters/api_key_read"}
    responses:
      200: {$ref: "#/components/responses/ok"}
      400: {$ref: "#/components/responses/error"}
      429: {$ref: "#/components/responses/error"}
    """
    params = _params(request)
    client = _client(params.get("api_key"))
    ids = mapping.split_ids(params.get("service_request_id"))
    if ids:
        found = []
        for i in ids[:mapping.MAX_RESULTS]:
            try:
                found.append(incidents.get(PUBLIC_READER, i)[0])
            except NotFound:
                continue
        return render(200, request.path_params["format"], "service_requests", _views(found, client))
    end = parse_iso(params.get("end_date"), "end_date") or utcnow()
    start = parse_iso(params.get("start_date"), "start_date") or end - DEFAULT_WINDOW
    filters = incidents.Filters(statuses=mapping.parse_statuses(params.get("status")),
                                category_code=params.get("service_code") or None,
                                reported_from=start, reported_to=end)
    found, token = [], ""
    while len(found) < mapping.MAX_RESULTS:
        page, token = incidents.list_incidents(PUBLIC_READER, filters, incidents.MAX_PAGE, token)
        found += page
        if not token:
            break
    return render(200, request.path_params["format"], "service_requests",
                  _views(found[:mapping.MAX_RESULTS], client))


def request_create(request: Request, body: bytes) -> Response:
    """
    ---
    summary: Submit a service request (needs an api_key; Idempotency-Key makes retries safe)
    parameters:
      - {$ref: "#/components/parameters/format"}
      - {name: Idempotency-Key, in: header, schema: {type: string}, description: "the same key again returns the
         first request (200) instead of making another"}
    requestBody:
      required: true
      content:
        application/x-www-form-urlencoded:
          schema:
            type: object
            required: [api_key, service_code, lat, long, description]
            properties:
              api_key: {type: string}
              service_code: {type: string}
              lat: {type: number, minimum: -90, maximum: 90}
              long: {type: number, minimum: -180, maximum: 180}
              datum: {type: string, enum: [wgs84, cgcs2000, gcj02, bd09], default: wgs84,
                      description: "gridbus's own: the datum of lat/long. GeoReport v2's are WGS 84 (the default);
                       apps on AMap or Tencent maps send gcj02, on Baidu maps bd09. The point is converted to WGS 84
                       before it is pinned to its grid; lat/long read back are WGS 84"}
              description: {type: string, maxLength: 4000}
              address_string: {type: string}
              media_url: {type: string, format: uri}
    responses:
      200: {$ref: "#/components/responses/ok"}
      201: {$ref: "#/components/responses/ok"}
      400: {$ref: "#/components/responses/error"}
      403: {$ref: "#/components/responses/error"}
      404: {$ref: "#/components/responses/error"}
      408: {$ref: "#/components/responses/error"}
      409: {$ref: "#/components/responses/error"}
      413: {$ref: "#/components/responses/error"}
      429: {$ref: "#/components/responses/error"}
    """
    params = _params(request)
    form = mapping.parse_form(body, request.headers.get("content-type"))
    _no_nul(form)
    client = _client(form.get("api_key") or params.get("api_key"))
    if client is None:
        raise PermissionDenied("a valid api_key is required to submit requests")
    caller = Principal(f"{incidents_domain.OPEN311_REPORTER_PREFIX}{client}", auth.SERVICE, ())
    shared_access.permit(access.SUBMIT, caller)
    result = incidents.report(caller, **mapping.report_args(form, client, request.headers.get("idempotency-key")))
    return render(200 if result.replayed else 201, request.path_params["format"], "service_requests",
                  [{"service_request_id": result.incident.id, "service_notice": "", "account_id": ""}])


COMPONENTS = {
    "parameters": {
        "format": {"name": "format", "in": "path", "required": True, "schema": {"type": "string", "enum": ["json", "xml"]},
                   "description": "the answer's format, as the path's extension"},
        "api_key_read": {"name": "api_key", "in": "query", "schema": {"type": "string"},
                         "description": "optional: the client's own requests are shown in full"},
    },
    "responses": {
        "ok": {"description": "GeoReport v2 (http://wiki.open311.org/GeoReport_v2)",
               "content": {"application/json": {}, "text/xml": {}}},
        "error": {"description": "a list of errors, each {code: the HTTP status, description}",
                  "content": {"application/json": {}, "text/xml": {}}},
    },
}
DESCRIPTION = ("Open311 GeoReport v2 (http://wiki.open311.org/GeoReport_v2) for gridbus: citizens' apps submit "
               "service requests with an api_key and anyone reads back the ones submitted this way, each in JSON or "
               "XML (the path's extension). Public reads show a fixed text per state and coordinates rounded to 4 "
               "decimal places (about 10 m).")


def _route(path: str, fn, methods=("GET",)) -> Route:
    for method in methods:
        shared_access.declared(access.TABLE, "http", f"{method} {BASE}/{path}")
    return Route(f"{BASE}/{path}", threaded(fn, open311_error), methods=list(methods))


def app(limits_: Limits | None = None):
    return create_app(
        title="gridbus Open311 GeoReport v2", version="2", description=DESCRIPTION,
        routes=[_route("discovery.{format:open311_format}", discovery),
                _route("services.{format:open311_format}", services_list),
                _route("services/{service_code}.{format:open311_format}", service_definition),
                _route("requests.{format:open311_format}", requests_list),
                _route("requests.{format:open311_format}", request_create, ("POST",)),
                _route("requests/{service_request_id}.{format:open311_format}", request_one)],
        health=incidents.health, limits_=limits_ or Limits.from_settings(max_body_bytes=MAX_BODY_BYTES),
        errors=open311_error, components=COMPONENTS)


def main() -> None:
    registry.start("open311-http")
    setup_logging()
    limits_ = Limits.from_settings(max_body_bytes=MAX_BODY_BYTES)
    incidents.leaf_grids()  # requests are pinned from memory: built before the first one is taken
    serve(app(limits_), registry.port("open311", registry.HTTP), limits_)


if __name__ == "__main__":
    main()
