"""Errors as JSON: ``{"error": {"type": ..., "message": ...}}`` with one line that says what to do.

A :class:`~genforge.core.errors.GenforgeError` keeps the message the CLI prints; its class picks the status
(bad values and data: 422, a limit: 413, a damaged run: 409, the server's disk: 507). Server paths in a
message are shown relative to the service's home folder.
"""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException

from genforge.core.errors import (ConfigError, DataError, GenforgeError, LimitError, OutputError, RunDirError,
                                  TrainingDiverged)

STATUS = {ConfigError: 422, DataError: 422, LimitError: 413, RunDirError: 409, TrainingDiverged: 409,
          OutputError: 507}
CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found", 405: "method_not_allowed",
         409: "conflict", 413: "too_large", 422: "invalid", 429: "too_many_requests", 503: "unavailable"}


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def status_of(err: GenforgeError) -> int:
    for cls in type(err).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 422


def public(message: str, home: str) -> str:
    """``message`` with the service's home folder left out of the paths it names."""
    return one_line(message).replace(home.rstrip("/") + "/", "").replace(home, ".")


def body(kind: str, message: str) -> dict:
    return {"error": {"type": kind, "message": message}}


def install(app: FastAPI, home: str) -> None:
    @app.exception_handler(GenforgeError)
    async def _genforge(request: Request, err: GenforgeError):
        return JSONResponse(body(type(err).__name__, public(str(err), home)), status_code=status_of(err))

    @app.exception_handler(HTTPException)
    async def _http(request: Request, err: HTTPException):
        return JSONResponse(body(CODES.get(err.status_code, "error"), one_line(err.detail)),
                            status_code=err.status_code, headers=getattr(err, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _invalid(request: Request, err: RequestValidationError):
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()) if p != "body") or "request"
        more = f" (and {len(err.errors()) - 1} more)" if len(err.errors()) > 1 else ""
        msg = f"invalid {where}: {str(first.get('msg', 'bad value')).lower()}{more}; see /docs for the expected shape"
        return JSONResponse(body("invalid", one_line(msg)), status_code=422)
