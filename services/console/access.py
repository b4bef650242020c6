"""Who may call the dispatch console's routes (shared/access.py). Sign-in takes dispatchers and
admins for the console and officers for the officer's app (services/console/signin.py); every
API call then acts with the member's own token, so the services' tables decide what it reaches."""
from __future__ import annotations

from shared.access import ANY, OWN_GRIDS, OWN_RECORD, Table, allow

PAGE = allow("load a page or the console's settings (no data)", public=ANY)
SIGN_IN = allow("sign in (the credentials are the check)", public=ANY)
PHOTO = allow("view a photo by a signed link handed out with its case (the link is the check)", public=ANY)
CONSOLE = allow("use the console: the queue, cases, map, figures, live events", dispatcher=OWN_GRIDS,
                admin=OWN_GRIDS)
CONSOLE_SESSION = allow("read or end one's own console session", dispatcher=OWN_RECORD, admin=OWN_RECORD)
OFFICER_SESSION = allow("read or end one's own session of the officer's app", officer=OWN_RECORD)
FILTERS = allow("keep one's own saved filters", dispatcher=OWN_RECORD, admin=OWN_RECORD)
OFFICER = allow("use the officer's app: report, one's cases, duty, position, photos, alerts", officer=OWN_GRIDS)

_console = {"GET /api/reference": CONSOLE, "GET /api/tiles/{z:int}/{x:int}/{y:int}.pbf": CONSOLE,
            "GET /api/incidents": CONSOLE, "GET /api/incidents/{incident_id}": CONSOLE,
            "POST /api/incidents/{incident_id}/actions/{action}": CONSOLE, "GET /api/officers": CONSOLE,
            "GET /api/units/{code}": CONSOLE, "GET /api/units/{code}/children": CONSOLE, "GET /api/figures": CONSOLE,
            "GET /api/filters": FILTERS, "PUT /api/filters/{name}": FILTERS, "DELETE /api/filters/{name}": FILTERS,
            "GET /api/events": CONSOLE, "GET /api/session": CONSOLE_SESSION, "DELETE /api/session": CONSOLE_SESSION}
_officer = {f"{method} /api/officer/{path}": OFFICER for method, path in (
    ("GET", "reference"), ("GET", "tiles/{z:int}/{x:int}/{y:int}.pbf"), ("POST", "reports"), ("GET", "cases"),
    ("GET", "cases/{incident_id}"), ("POST", "cases/{incident_id}/{action}"), ("PUT", "duty"), ("POST", "position"),
    ("POST", "attachments"), ("GET", "alerts/stream"), ("GET", "alerts/{alert_id}"),
    ("POST", "alerts/{alert_id}/accept"), ("POST", "alerts/{alert_id}/decline"))}
_public = {"GET /healthz": PAGE, "GET /api/config": PAGE, "POST /api/session": SIGN_IN,
           "POST /api/officer/session": SIGN_IN, "GET /attachments/{name}": PHOTO,
           **{f"GET {page}": PAGE for page in ("/", "/map", "/queue", "/figures", "/wall", "/signin",
                                               "/case/{incident_id}", "/officer", "/officer/{rest:path}")}}

TABLE = Table("console", http={**_public, **_console, **_officer,
                               "GET /api/officer/session": OFFICER_SESSION,
                               "DELETE /api/officer/session": OFFICER_SESSION})
