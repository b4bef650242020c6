"""The public credit endpoint: what anyone may know about an enterprise, as of now. HTTP JSON, no
sign-in, rate-limited (shared/public_http.py); it reads through the registry's operations as the
PUBLIC reader, which sees published records of enterprises and the lists they are on today, and
nothing about people.

Run: python -m services.credit.public_http (port GRIDBUS_CREDIT_PUBLIC_HTTP_PORT, default 8312)."""
from __future__ import annotations

from dataclasses import asdict

from starlette.requests import Request
from starlette.routing import Route

from services import registry
from services.credit import access, disclosure
from services.credit import operations as ops
from shared import access as shared_access
from shared.auth import PUBLIC_READER
from shared.logs import setup_logging
from shared.public_http import Limits, create_app, json_endpoint, serve

DESCRIPTION = ("What the public may know about an enterprise in the credit registry: the records published "
               "today (by their publication periods) and the red and black lists it is on today. Every answer "
               "says as of when. Nothing about people is ever shown.")


def _profile(p: disclosure.PublicProfile) -> dict:
    return {"as_of": p.as_of, "date": p.day,
            "enterprise": {"code": p.code, "name": p.name, "name_verified": p.name_verified},
            "records": [asdict(r) for r in p.records], "lists": [asdict(m) for m in p.lists]}


def by_code(request: Request) -> dict:
    """An enterprise by its unified social credit code.
    ---
    summary: What the public may know about an enterprise, by its unified social credit code
    parameters:
      - {name: code, in: path, required: true, schema: {type: string}, description: 18-character code (GB 32100)}
    responses:
      200: {description: "as_of, date, enterprise {code, name, name_verified}, records (published today: kind,
            category, severity, authority, authority_name, decision_number, decision_date, legal_basis, summary,
            published_from, published_until), lists (on today: code, name, colour, authority, authority_name,
            basis, decision_number, since, until)"}
      400: {description: "the code is malformed (the message says how)"}
      404: {description: "no enterprise with this code in the registry"}
      429: {description: "too many requests from this client; see Retry-After"}
    """
    return _profile(disclosure.public_profile(PUBLIC_READER, uscc=request.path_params["code"])[0])


def by_name(request: Request) -> dict:
    """Enterprises by their exact registered name.
    ---
    summary: What the public may know about the enterprises with this exact registered name (at most 10)
    parameters:
      - {name: name, in: query, required: true, schema: {type: string}}
    responses:
      200: {description: "as_of, date, results: [the same object as by code]"}
      400: {description: "no name given"}
      404: {description: "no enterprise with this registered name"}
      429: {description: "too many requests from this client; see Retry-After"}
    """
    profiles = disclosure.public_profile(PUBLIC_READER, name=request.query_params.get("name", ""))
    return {"as_of": profiles[0].as_of, "date": profiles[0].day, "results": [_profile(p) for p in profiles]}


def _route(path: str, fn) -> Route:
    shared_access.declared(access.TABLE, "http", f"GET {path}")
    return Route(path, json_endpoint(fn))


def app(limits_: Limits | None = None):
    return create_app(title="gridbus public credit information", version="1", description=DESCRIPTION,
                      routes=[_route("/credit/v1/enterprises/{code}", by_code),
                              _route("/credit/v1/enterprises", by_name)],
                      health=ops.health, limits_=limits_ or Limits.from_settings())


def main() -> None:
    registry.start("credit-http")
    setup_logging()
    limits_ = Limits.from_settings()
    serve(app(limits_), registry.port("credit", registry.HTTP), limits_)


if __name__ == "__main__":
    main()
