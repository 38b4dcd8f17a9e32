"""The built dashboard (webapp/dist) served at `/`.

It hooks the 404 handler rather than mounting at `/`: a catch-all mount or route would win over an
API route that matched the path but not the method (turning a 405 into a page), and would shadow
unknown `/api/...` paths with HTML. Here the API answers first; only a GET or HEAD that no route
took, outside the API's prefixes, gets a dist file or, for the dashboard's own client-side routes,
index.html.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exception_handlers import http_exception_handler
from fastapi.responses import FileResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

DIST = Path(__file__).resolve().parent.parent / "webapp" / "dist"
# First path segments that belong to the API, never to the dashboard.
RESERVED = frozenset({"api", "ws", "docs", "redoc", "openapi.json"})
# Vite fingerprints asset names, so they can be cached for good; index.html must be revalidated.
IMMUTABLE = "public, max-age=31536000, immutable"


def mount_dashboard(app: FastAPI, dist: Path = DIST) -> bool:
    """Serve ``dist`` at `/` when it holds a build; return whether it does."""
    dist = dist.resolve()
    index = dist / "index.html"
    if not index.is_file():
        return False

    async def not_found(request: Request, exc: Exception) -> Response:
        assert isinstance(exc, StarletteHTTPException)
        path = request.url.path.lstrip("/")
        if request.method not in ("GET", "HEAD") or path.split("/", 1)[0] in RESERVED:
            return await http_exception_handler(request, exc)
        file = (dist / path).resolve()
        if path and file.is_relative_to(dist) and file.is_file():
            cache = IMMUTABLE if file.parent.name == "assets" else "no-cache"
            return FileResponse(file, headers={"Cache-Control": cache})
        return FileResponse(index, headers={"Cache-Control": "no-cache"})

    app.add_exception_handler(404, not_found)
    return True
