"""API errors in the OpenAI shape: ``{"error": {"message", "type", "param", "code"}}``.

Every failure a client can cause maps to a 4xx here; messages never echo the request's content
(no image bytes, no key).
"""

from __future__ import annotations

from fastapi.responses import JSONResponse

from ..media import ImageError, ImageTooLarge, UnsupportedImage
from ..messages import MessageError

TYPES = {400: "invalid_request_error", 401: "authentication_error", 403: "permission_error",
         404: "not_found_error", 413: "request_too_large", 415: "invalid_request_error",
         422: "invalid_request_error", 503: "server_overloaded"}


class APIError(Exception):
    """An error answer: HTTP ``status``, a message for people, the request field at fault."""

    def __init__(self, status: int, message: str, param: str | None = None,
                 code: str | None = None, headers: dict[str, str] | None = None):
        super().__init__(message)
        self.status, self.message, self.param, self.code = status, message, param, code
        self.headers = headers or {}

    def response(self) -> JSONResponse:
        body = {"error": {"message": self.message, "type": TYPES.get(self.status, "server_error"),
                          "param": self.param, "code": self.code}}
        return JSONResponse(body, status_code=self.status, headers=self.headers)


def image_error(err: ImageError, param: str | None) -> APIError:
    """The typed image errors of :mod:`sphinx_mllm.media` as API errors."""
    if isinstance(err, ImageTooLarge):
        return APIError(413, str(err), param, "image_too_large")
    if isinstance(err, UnsupportedImage):
        return APIError(415, str(err), param, "unsupported_image")
    return APIError(400, str(err), param, "invalid_image")


def message_error(err: MessageError) -> APIError:
    return APIError(400, str(err), err.param.replace("[", ".").replace("]", ""), "invalid_messages")
