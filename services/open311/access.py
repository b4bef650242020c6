"""Who may call the Open311 gateway's routes (shared/access.py). Anyone reads; what the public
reads of requests is not personal (only requests submitted through Open311, a fixed status text,
coordinates rounded to about 10 m); a client with an api_key submits as a service, for citizens."""
from __future__ import annotations

from shared.access import ANY, NOT_PERSONAL, Table, allow

CATALOGUE = allow("read the service catalogue", public=ANY)
READ_REQUESTS = allow("read service requests submitted through Open311", public=NOT_PERSONAL)
SUBMIT = allow("submit a service request (with a client's api_key)", service=ANY)

BASE = "/open311/v2"
FORMAT = "{format:open311_format}"
TABLE = Table(
    "open311",
    http={f"GET {BASE}/discovery.{FORMAT}": CATALOGUE, f"GET {BASE}/services.{FORMAT}": CATALOGUE,
          f"GET {BASE}/services/{{service_code}}.{FORMAT}": CATALOGUE, f"GET {BASE}/requests.{FORMAT}": READ_REQUESTS,
          f"POST {BASE}/requests.{FORMAT}": SUBMIT, f"GET {BASE}/requests/{{service_request_id}}.{FORMAT}": READ_REQUESTS},
)
