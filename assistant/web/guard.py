"""No uploads: the app has no feature that takes a file, so none is accepted.

`RequestGuard` is an ASGI middleware in front of everything `serve` starts. Gradio's upload
routes (`/gradio_api/upload`, `/gradio_api/process_recording`, `/gradio_api/upload_progress`)
and any multipart body (other than a sign-in form) are refused with 403 before a byte is read.
Nothing a user sends is stored as a file, so none can be served to another user. `serve` also
sets Gradio's `max_file_size` to 0, which refuses a file on any route this misses.
"""

from __future__ import annotations

import json
import logging

__all__ = ["RequestGuard", "NO_UPLOADS"]

log = logging.getLogger("calibrated_chat.access")

NO_UPLOADS = "This app takes no file uploads."
_UPLOAD_ENDS = ("/upload", "/process_recording", "/upload_progress")


def _content_type(scope) -> str:
    return next((v.decode("latin-1").lower() for k, v in scope.get("headers", []) if k.lower() == b"content-type"), "")


def is_upload(scope) -> bool:
    """Whether an HTTP request is an upload: to an upload route, or with a multipart body."""
    path = scope["path"].rstrip("/")
    if path.endswith(_UPLOAD_ENDS):
        return True
    return _content_type(scope).startswith("multipart/") and not path.endswith("/login")


class RequestGuard:
    """ASGI middleware: refuses uploads (see the module docstring); every other request passes untouched."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http" or not is_upload(scope):
            return await self.app(scope, receive, send)
        log.warning("refused an upload to %s", scope["path"])
        data = json.dumps({"detail": NO_UPLOADS}).encode()
        await send({"type": "http.response.start", "status": 403, "headers": [
            (b"content-type", b"application/json"), (b"content-length", str(len(data)).encode())]})
        await send({"type": "http.response.body", "body": data})
