"""The attachment store over HTTP: an officer's upload (the raw photo as the body, its type in
Content-Type; answered with its hash and `gridbus://` reference, 201 when new, 200 when those
bytes were already stored), and the local store's signed viewing links."""
from __future__ import annotations

import time

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response

from services.console.attachments.images import MEDIA_TYPES, clean
from services.console.attachments.store import LocalStore
from shared.errors import NotFound

UPLOAD_TYPES = tuple(MEDIA_TYPES)
UPLOAD_TIMEOUT_S = 120.0  # a 10 MiB photo over a slow 3G link


def upload_handler(store):
    async def upload(request: Request, session) -> Response:
        data = await request.body()  # the body limit in front has capped it
        cleaned = await run_in_threadpool(clean, data, request.headers.get("content-type", ""))
        stored = await run_in_threadpool(store.put, cleaned.sha256, cleaned.data, cleaned.media_type)
        return JSONResponse(stored.json(), status_code=201 if stored.created else 200)
    return upload


def view_handler(store):
    async def view(request: Request, _) -> Response:
        """A photo behind a link views.case signed; the link is the permission."""
        if not isinstance(store, LocalStore):
            raise NotFound("photos are served by the object store")
        q = request.query_params
        path, media_type = store.open_link(request.path_params["name"], q.get("expires", ""), q.get("sig", ""))
        left = max(int(q["expires"]) - int(time.time()), 0)
        return FileResponse(path, media_type=media_type,
                            headers={"Cache-Control": f"private, max-age={left}", "Content-Disposition": "inline"})
    return view
