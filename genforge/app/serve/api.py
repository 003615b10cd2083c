"""The FastAPI app: the API under ``/v1`` (OpenAPI at ``/docs``), the web UI at ``/``, ``/healthz``,
``/readyz`` and ``/metrics``; a request-id, metrics and JSON-log middleware around everything.

``create_app(settings)`` migrates the database to the newest schema, opens the queue and starts the
recovery loop (jobs whose worker died are queued again to resume)."""

from __future__ import annotations

import contextlib
import logging
import time

from fastapi import FastAPI
from fastapi.responses import JSONResponse, Response

from genforge.app.serve import db, errors, logs, schemas
from genforge.app.serve.jobs import Queue, Recovery
from genforge.app.serve.limits import RateLimiter
from genforge.app.serve.metrics import Metrics
from genforge.app.serve.settings import Settings
from genforge.core.version import __version__

log = logging.getLogger("genforge.serve.http")


class Observe:
    """ASGI middleware: a request id for every request (``X-Request-ID``), one JSON log line and the
    request metrics (route template, method, status, seconds)."""

    def __init__(self, app, metrics: Metrics):
        self.app, self.metrics = app, metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        headers = dict(scope.get("headers") or [])
        rid = logs.new_request_id(headers.get(b"x-request-id", b"").decode("latin-1"))
        token = logs.request_id.set(rid)
        scope.setdefault("state", {})["request_id"] = rid
        status = {"code": 500}
        t0 = time.perf_counter()

        async def sending(message):
            if message["type"] == "http.response.start":
                status["code"] = message["status"]
                message.setdefault("headers", []).append((b"x-request-id", rid.encode()))
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            seconds = time.perf_counter() - t0
            route = route_of(scope)
            self.metrics.observe(route, scope["method"], status["code"], seconds)
            user = (scope.get("state") or {}).get("user")
            log.info("request", extra={"method": scope["method"], "route": route, "path": scope["path"][:200],
                                       "status": status["code"], "ms": round(seconds * 1000, 2),
                                       "user": getattr(user, "name", None)})
            logs.request_id.reset(token)


def route_of(scope) -> str:
    """The route template of a request (``/v1/runs/{run_id}``): its path with the path parameters put back
    as names, so that metrics have one series per route, not one per run."""
    if scope.get("route") is None:
        return "static" if scope["path"].startswith("/static/") else "unmatched"
    path = scope["path"]
    for name, value in (scope.get("path_params") or {}).items():
        path = path.replace(f"/{value}", f"/{{{name}}}", 1)
    return path


def create_app(settings: Settings, recovery: bool = True) -> FastAPI:
    from genforge.app.serve import api_admin, api_data, api_runs, ui

    import torch

    torch.set_num_threads(settings.threads)  # requests sample in parallel, each on this many threads
    db.migrate(settings.db_url)
    queue = Queue(settings)

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        loop = Recovery(settings, queue) if recovery else None
        if loop is not None:
            loop.start()
        yield
        if loop is not None:
            loop.stop()

    app = FastAPI(title="genforge", version=__version__, lifespan=lifespan,
                  description="Train generative models on your own data, generate from them and check their "
                              "quality. Every /v1 endpoint needs `Authorization: Bearer TOKEN`.",
                  responses={401: {"model": schemas.Error}, 422: {"model": schemas.Error},
                             429: {"model": schemas.Error}})
    app.state.settings, app.state.queue, app.state.limiter = settings, queue, RateLimiter()
    app.state.metrics = Metrics(settings, queue)
    errors.install(app, str(settings.home))
    for router in (api_admin.router, api_data.router, api_runs.router):
        app.include_router(router, prefix="/v1")
    ui.install(app)

    @app.get("/healthz", tags=["health"], summary="the process answers")
    def healthz():
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"], summary="the database (at the newest schema) and the queue answer")
    def readyz():
        checks = {}
        try:
            db.ping(settings.db_url)
            current, head = db.current_revision(settings.db_url), db.head_revision()
            checks["database"] = "ok" if current == head else f"schema at {current}, expected {head}; restart to migrate"
        except Exception as err:  # noqa: BLE001 - readiness reports, it does not fail
            checks["database"] = f"unreachable ({type(err).__name__})"
        try:
            queue.ping()
            checks["queue"] = "ok"
        except Exception as err:  # noqa: BLE001
            checks["queue"] = f"unreachable ({type(err).__name__})"
        ok = all(v == "ok" for v in checks.values())
        return JSONResponse({"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics", response_class=Response)
    def metrics_endpoint():
        from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

        return Response(generate_latest(app.state.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    app.add_middleware(Observe, metrics=app.state.metrics)
    return app
