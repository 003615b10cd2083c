"""The web UI: server-rendered Jinja2 pages plus a little plain JavaScript (``static/app.js``), no build
step. Pages read the database and the registry directly; every action the pages take goes through the
same ``/v1`` API as any other client (the sign-in cookie carries the token), so the UI shows the API's
own error messages."""

from __future__ import annotations

import json
from pathlib import Path

from fastapi import FastAPI, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates
from sqlalchemy import select

from genforge.app.serve import db
from genforge.app.serve.api_data import model_info, modality_info
from genforge.app.serve.api_runs import run_out
from genforge.app.serve.auth import COOKIE, user_for
from genforge.app.serve.models import Dataset, Run
from genforge.core import registry
from genforge.core.version import __version__

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))


def _user(request: Request):
    cfg = request.app.state.settings
    with db.session(cfg.db_url) as s:
        return user_for(s, request.cookies.get(COOKIE), cfg.limits)


def _page(request: Request, name: str, **context):
    u = _user(request)
    if u is None:
        return RedirectResponse("/signin", status_code=303)
    request.state.user = u
    return templates.TemplateResponse(request, name, {"user": u, "version": __version__, **context})


def _owned_query(model, u):
    q = select(model).order_by(model.created_at.desc())
    return q if u.admin else q.where(model.owner_id == u.id)


def install(app: FastAPI) -> None:
    app.mount("/static", StaticFiles(directory=str(HERE / "static")), name="static")

    @app.get("/signin", response_class=HTMLResponse, include_in_schema=False)
    def signin_page(request: Request, error: str | None = None):
        return templates.TemplateResponse(request, "signin.html", {"user": None, "error": error, "version": __version__})

    @app.post("/signin", include_in_schema=False)
    def signin(request: Request, token: str = Form("")):
        cfg = request.app.state.settings
        with db.session(cfg.db_url) as s:
            u = user_for(s, token.strip(), cfg.limits)
        if u is None:
            return templates.TemplateResponse(request, "signin.html", {"user": None, "version": __version__,
                                              "error": "that token is unknown or revoked; paste the whole token "
                                                       "(it starts with gf_)"}, status_code=401)
        resp = RedirectResponse("/", status_code=303)
        resp.set_cookie(COOKIE, token.strip(), httponly=True, samesite="strict", max_age=30 * 86400)
        return resp

    @app.post("/signout", include_in_schema=False)
    def signout():
        resp = RedirectResponse("/signin", status_code=303)
        resp.delete_cookie(COOKIE)
        return resp

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def home(request: Request):
        u = _user(request)
        if u is None:
            return RedirectResponse("/signin", status_code=303)
        with db.session(request.app.state.settings.db_url) as s:
            runs = [run_out(s, r) for r in s.scalars(_owned_query(Run, u).limit(200))]
            datasets = list(s.scalars(_owned_query(Dataset, u).limit(200)))
        return _page(request, "runs.html", runs=runs, datasets=datasets)

    @app.get("/train", response_class=HTMLResponse, include_in_schema=False)
    def train_page(request: Request, dataset: str | None = None):
        u = _user(request)
        if u is None:
            return RedirectResponse("/signin", status_code=303)
        with db.session(request.app.state.settings.db_url) as s:
            datasets = [{"id": d.id, "name": d.name, "version": d.version, "kind": d.kind}
                        for d in s.scalars(_owned_query(Dataset, u))]
        mods = [modality_info(m) for m in registry.modalities()]
        models = [model_info(n) for n, _ in registry.available()]
        return _page(request, "train.html", datasets=datasets, modalities=mods, models=models, picked=dataset,
                     catalog=json.dumps({"models": models, "modalities": mods, "datasets": datasets}))

    def _run_page(request: Request, run_id: str, template: str):
        u = _user(request)
        if u is None:
            return RedirectResponse("/signin", status_code=303)
        with db.session(request.app.state.settings.db_url) as s:
            run = s.get(Run, run_id) if len(run_id) <= 40 else None
            if run is None or (run.owner_id != u.id and not u.admin):
                return templates.TemplateResponse(request, "missing.html", {"user": u, "version": __version__,
                                                  "what": f"run '{run_id[:40]}'"}, status_code=404)
            out = run_out(s, run, detail=True)
        mod = registry.modality(out.kind)
        return _page(request, template, run=out, modality=modality_info(mod),
                     run_json=json.dumps(out.model_dump(mode="json")))

    @app.get("/runs/{run_id}", response_class=HTMLResponse, include_in_schema=False)
    def run_page(request: Request, run_id: str):
        return _run_page(request, run_id, "run.html")

    @app.get("/runs/{run_id}/generate", response_class=HTMLResponse, include_in_schema=False)
    def generate_page(request: Request, run_id: str):
        return _run_page(request, run_id, "generate.html")
