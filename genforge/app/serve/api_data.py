"""What can be trained (models and modalities, from the registry) and datasets (upload, list, show, delete)."""

from __future__ import annotations

import json

from fastapi import APIRouter, Depends, HTTPException, Query, Request
from fastapi.concurrency import run_in_threadpool
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genforge.app.serve import deps, uploads
from genforge.app.serve.auth import User
from genforge.app.serve.errors import public
from genforge.app.serve.limits import TooLarge, upload_limit
from genforge.app.serve.models import Dataset, Run, new_id, now
from genforge.app.serve.schemas import DatasetOut
from genforge.core import registry
from genforge.core.errors import ConfigError
from genforge.core.io import ensure_dir
from genforge.core.limits import human

router = APIRouter(tags=["data"])


def modality_info(mod) -> dict:
    return {"name": mod.name, "plural": mod.plural, "default_data": mod.default_data,
            "data_options": sorted(k for k in mod.data_options if k in uploads.READ_OPTIONS or k == "epochs"),
            "sample_options": sorted(set(mod.sample_options) - {"prompt_file"}),
            "formats": [s.lstrip(".") for s in mod.formats()], "streams": mod.streams_samples,
            "default_count": mod.default_count, "models": registry.models_of(mod.name)}


def model_info(name: str) -> dict:
    cls = registry.get(name)
    try:
        schema = cls.Config.model_json_schema()
    except Exception:  # noqa: BLE001 - a config type JSON Schema cannot say: the form falls back to free options
        schema = {}
    return {"name": name, "modality": cls.modality, "description": cls.description,
            "conditional": bool(getattr(cls, "conditional", False)), "options": schema}


@router.get("/models", summary="every registered model family, with its modality and option schema")
def models(u: User = Depends(deps.user)):
    return [model_info(name) for name, _ in registry.available()]


@router.get("/modalities", summary="every registered kind of data: loader options, sampling controls, formats")
def modalities(u: User = Depends(deps.user)):
    return [modality_info(m) for m in registry.modalities()]


def dataset_out(row: Dataset) -> DatasetOut:
    return DatasetOut(id=row.id, name=row.name, version=row.version, kind=row.kind, size_bytes=row.size_bytes,
                      options=row.options or {}, summary=row.summary, created_at=row.created_at)


UPLOAD_BODY = {"requestBody": {"required": True, "content": {"application/octet-stream": {
    "schema": {"type": "string", "format": "binary"}}}}}


@router.post("/datasets", status_code=201, response_model=DatasetOut, openapi_extra=UPLOAD_BODY,
             summary="upload a dataset: the file's bytes as the body (a table, a .zip of an image folder, text)")
async def upload(request: Request, name: str = Query(..., min_length=1, max_length=200,
                                                      description="the file's name, e.g. photos.zip or sales.csv"),
                 kind: str | None = Query(None, max_length=20, description="image, table or text (default: guessed)"),
                 options: str | None = Query(None, max_length=2000, description="loader options as a JSON object"),
                 u: User = Depends(deps.user)):
    cfg = request.app.state.settings
    limit = upload_limit(u)
    declared = request.headers.get("content-length")
    if declared and declared.isdigit() and int(declared) > limit:
        raise TooLarge(f"the upload ({human(int(declared))}) is larger than this token's limit of {human(limit)}; "
                       f"upload a smaller file or ask an admin for more")
    try:
        opts = json.loads(options) if options else {}
    except json.JSONDecodeError:
        raise ConfigError('options must be a JSON object, e.g. {"text_column": "body"}') from None
    if not isinstance(opts, dict):
        raise ConfigError('options must be a JSON object, e.g. {"text_column": "body"}')
    ds_id = new_id()
    folder = ensure_dir(cfg.uploads_dir / str(u.id) / ds_id)
    filename = uploads.safe_name(name)
    try:
        if filename.endswith(".zip"):
            archive = folder / ".upload.zip"
            size = await uploads.save_stream(request.stream(), archive, limit)
            path = await run_in_threadpool(uploads.unpack_zip, archive, folder / "files", cfg)
            archive.unlink()
        else:
            path = folder / filename
            size = await uploads.save_stream(request.stream(), path, limit)
        mod = uploads.pick_kind(path, kind)
        opts = uploads.read_options(opts, mod)
        summary = await run_in_threadpool(uploads.validate, path, mod, opts, name)
    except BaseException:
        uploads.remove(folder)
        raise
    with deps.db.session(cfg.db_url) as s:
        version = (s.scalar(select(func.max(Dataset.version)).where(Dataset.owner_id == u.id, Dataset.name == name))
                   or 0) + 1
        row = Dataset(id=ds_id, owner_id=u.id, name=name, version=version, kind=mod.name, filename=filename,
                      path=str(path), size_bytes=size, options=opts, summary=public(summary, str(cfg.home)), created_at=now())
        s.add(row)
        deps.audit(s, request, "dataset.upload", ds_id, name=name, kind=mod.name, bytes=size, version=version)
        s.flush()
        return dataset_out(row)


@router.get("/datasets", response_model=list[DatasetOut], summary="your datasets, newest first")
def list_datasets(u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    q = select(Dataset).order_by(Dataset.created_at.desc())
    if not u.admin:
        q = q.where(Dataset.owner_id == u.id)
    return [dataset_out(r) for r in s.scalars(q)]


@router.get("/datasets/{dataset_id}", response_model=DatasetOut, summary="one dataset")
def get_dataset(dataset_id: str, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    return dataset_out(deps.owned(s, Dataset, dataset_id, u, "dataset"))


@router.delete("/datasets/{dataset_id}", status_code=204, summary="delete a dataset no run was trained on")
def delete_dataset(dataset_id: str, request: Request, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    row = deps.owned(s, Dataset, dataset_id, u, "dataset")
    if s.scalar(select(Run.id).where(Run.dataset_id == row.id).limit(1)):
        raise HTTPException(409, f"dataset '{row.id}' trained runs that still need it (to resume and evaluate); "
                                 f"delete those runs first")
    uploads.remove(request.app.state.settings.uploads_dir / str(row.owner_id) / row.id)
    s.delete(row)
    deps.audit(s, request, "dataset.delete", row.id, name=row.name)
