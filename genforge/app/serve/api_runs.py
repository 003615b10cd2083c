"""Training jobs and runs: start, follow (SSE), cancel, resume, retrain, evaluate, generate, download."""

from __future__ import annotations

import asyncio
import shutil
import tarfile
import tempfile
from pathlib import Path

from fastapi import APIRouter, Depends, HTTPException, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import FileResponse, HTMLResponse, StreamingResponse
from sqlalchemy import select
from sqlalchemy.orm import Session
from starlette.background import BackgroundTask

from genforge.app.serve import deps, progress, samples
from genforge.app.serve.auth import User
from genforge.app.serve.jobs import set_state
from genforge.app.serve.limits import check_jobs, check_samples
from genforge.app.serve.models import FINISHED, Dataset, Evaluation, Job, Run, new_id, now
from genforge.app.serve.schemas import (EvaluateRequest, EvaluationOut, JobOut, ResumeRequest, RetrainRequest, RunOut,
                                        SampleRequest, StreamRequest, TrainRequest)
from genforge.app.serve.uploads import READ_OPTIONS
from genforge.core import registry
from genforge.core.errors import ConfigError
from genforge.core.runs import RunDir

router = APIRouter(tags=["runs"])
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def job_out(j: Job) -> JobOut:
    return JobOut(**{k: getattr(j, k) for k in JobOut.model_fields})


def eval_out(e: Evaluation) -> EvaluationOut:
    return EvaluationOut(id=e.id, run_id=e.run_id, title=e.title, metrics=e.metrics or {}, created_at=e.created_at)


def latest_job(s: Session, run_id: str) -> Job | None:
    return s.scalar(select(Job).where(Job.run_id == run_id).order_by(Job.created_at.desc(), Job.id).limit(1))


def compare(new: Evaluation | None, old: Evaluation | None) -> dict | None:
    """Metric by metric, whether a retrained run is better or worse than the run it retrains."""
    if new is None or old is None:
        return None
    rows, up, down = [], 0, 0
    for name, row in (new.metrics or {}).items():
        before = (old.metrics or {}).get(name) or {}
        a, b, better = before.get("value"), row.get("value"), row.get("better")
        if not isinstance(a, (int, float)) or not isinstance(b, (int, float)) or better not in ("higher", "lower"):
            continue
        change = "same" if a == b else ("better" if (b > a) == (better == "higher") else "worse")
        up, down = up + (change == "better"), down + (change == "worse")
        rows.append({"metric": name, "before": a, "after": b, "better": better, "change": change})
    verdict = "better" if up > down else "worse" if down > up else "mixed" if up else "same"
    return {"against": old.run_id, "evaluation": old.id, "metrics": rows, "better": up, "worse": down,
            "verdict": verdict}


def run_out(s: Session, r: Run, detail: bool = False) -> RunOut:
    job = latest_job(s, r.id)
    out = RunOut(id=r.id, model=r.model, kind=r.kind, data=r.data, dataset_id=r.dataset_id, status=r.status,
                 step=r.step, losses=r.losses or {}, parent_id=r.parent_id, created_at=r.created_at,
                 updated_at=r.updated_at, job=job_out(job) if job else None)
    if detail:
        mod = registry.modality(r.kind)
        out.formats = [f.lstrip(".") for f in mod.formats()]
        out.sample_options = sorted(set(mod.sample_options) - set(samples.PATH_OPTIONS))
        try:
            out.choices = mod.sample_choices(RunDir(r.path)) if (Path(r.path) / "config.yaml").exists() else {}
        except Exception:  # noqa: BLE001 - a damaged run still shows; sampling will say what is wrong
            out.choices = {}
        evals = s.scalars(select(Evaluation).where(Evaluation.run_id == r.id).order_by(Evaluation.created_at)).all()
        out.evaluations = [eval_out(e) for e in evals]
        if r.parent_id and evals:
            old = s.scalar(select(Evaluation).where(Evaluation.run_id == r.parent_id)
                           .order_by(Evaluation.created_at.desc()).limit(1))
            out.comparison = compare(evals[-1], old) or {"against": r.parent_id, "verdict": "unknown",
                                                         "note": "evaluate the earlier run to compare"}
    return out


def _submit(request: Request, s: Session, job: Job) -> None:
    s.add(job)
    s.commit()
    try:
        request.app.state.queue.enqueue(job.id)
    except Exception as err:  # noqa: BLE001 - the broker is down: the job must not look queued
        set_state(job, "failed", error=f"the queue is unreachable ({type(err).__name__}); try again when /readyz is ok")
        s.commit()
        raise HTTPException(503, f"the job queue is unreachable ({type(err).__name__}); try again when /readyz "
                                 f"says ok") from None


def _limit_s(request: Request, minutes: float | None) -> float:
    return (minutes or request.app.state.settings.job_hours * 60) * 60


def new_training(request: Request, s: Session, u: User, req: TrainRequest, parent: Run | None = None) -> Run:
    cfg = request.app.state.settings
    cls = registry.get(req.model)  # unknown model: 422 with close names
    mod = registry.modality(cls.modality)
    bad = [k for k in req.data_options if k not in READ_OPTIONS + ("epochs",) or
           (k != "limit" and k not in mod.data_options)]
    if bad:
        raise ConfigError(f"data option(s) {', '.join(map(str, bad))[:200]} do not apply to '{req.model}' "
                          f"({mod.plural}); use {', '.join(sorted(k for k in mod.data_options if k in READ_OPTIONS + ('epochs',)))}")
    registry.create(req.model, **req.options)  # bad hyper-parameters: 422 now, not a failed job later
    if req.dataset_id:
        ds = deps.owned(s, Dataset, req.dataset_id, u, "dataset")
        if ds.kind != mod.name:
            raise ConfigError(f"dataset '{ds.name}' holds {registry.modality(ds.kind).plural}, and '{req.model}' learns "
                              f"{mod.plural}; pick one of {', '.join(registry.models_of(ds.kind))}")
        data, label, data_options = ds.path, f"{ds.name} v{ds.version}", {**(ds.options or {}), **req.data_options}
    else:
        data, label, data_options = mod.default_data, mod.default_data, dict(req.data_options)
        if not data:
            raise ConfigError(f"{mod.plural} have no built-in demo data; upload a dataset and give its dataset_id")
    check_jobs(s, u)
    run_id = new_id()
    train = {"steps": req.steps, "minutes": req.minutes, "seed": req.seed}
    if req.steps:
        train["log_every"] = max(1, min(50, req.steps // 20))
    train.update({k: v for k, v in (("checkpoint_every", req.checkpoint_every), ("sample_every", req.sample_every))
                  if v is not None})
    run = Run(id=run_id, owner_id=u.id, model=req.model, kind=mod.name, dataset_id=req.dataset_id, data=label,
              path=str(cfg.runs_dir / str(u.id) / f"{req.model}-{run_id}"), status="queued",
              request=req.model_dump(), parent_id=parent.id if parent else None, created_at=now(), updated_at=now())
    s.add(run)
    s.flush()  # the run before its job (the job's foreign key)
    params = {"model": req.model, "data": data, "options": req.options, "data_options": data_options, "train": train,
              "evaluate_after": (parent_eval_options(s, parent) if parent else {}) if (req.evaluate or parent) else None}
    job = Job(id=new_id(), owner_id=u.id, run_id=run_id, kind="train", params=params, total_steps=req.steps,
              time_limit_s=_limit_s(request, req.time_limit_minutes), history=[[now().isoformat(), "queued"]],
              created_at=now())
    deps.audit(s, request, "run.train", run_id, model=req.model, dataset=req.dataset_id, parent=run.parent_id)
    _submit(request, s, job)
    return run


def parent_eval_options(s: Session, parent: Run) -> dict:
    """The evaluation a retrained run gets: the same as the parent's newest, so the numbers compare."""
    last = s.scalar(select(Job).where(Job.run_id == parent.id, Job.kind == "evaluate", Job.state == "finished")
                    .order_by(Job.created_at.desc()).limit(1))
    return dict((last.params or {}).get("evaluate") or {}) if last else {}


@router.post("/jobs", status_code=202, response_model=RunOut, summary="start training a model (a new run)")
def train(req: TrainRequest, request: Request, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    return run_out(s, new_training(request, s, u, req))


@router.get("/jobs", response_model=list[JobOut], summary="your jobs, newest first")
def list_jobs(u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    q = select(Job).order_by(Job.created_at.desc()).limit(500)
    return [job_out(j) for j in s.scalars(q if u.admin else q.where(Job.owner_id == u.id))]


@router.get("/jobs/{job_id}", response_model=JobOut, summary="one job: state, step, losses, ETA")
def get_job(job_id: str, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    return job_out(deps.owned(s, Job, job_id, u, "job"))


@router.post("/jobs/{job_id}/cancel", response_model=JobOut, summary="cancel a job (training stops at a step boundary, "
                                                                     "with a checkpoint)")
def cancel(job_id: str, request: Request, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    job = deps.owned(s, Job, job_id, u, "job")
    if job.state in FINISHED:
        raise HTTPException(409, f"job '{job.id}' is {job.state} already; nothing to cancel")
    job.cancel_requested = True
    if job.state in ("queued", "interrupted"):
        set_state(job, "cancelled")
        s.get(Run, job.run_id).status = "cancelled"
    elif job.state == "running":
        set_state(job, "cancelling")
    deps.audit(s, request, "job.cancel", job.id)
    return job_out(job)


@router.get("/jobs/{job_id}/events", summary="follow a job: server-sent events 'progress' until 'end'",
            response_class=StreamingResponse)
async def events(job_id: str, request: Request, u: User = Depends(deps.user)):
    url = request.app.state.settings.db_url

    def snapshot() -> dict:
        with deps.db.session(url) as s:
            return job_out(deps.owned(s, Job, job_id, u, "job")).model_dump(mode="json")

    first = await run_in_threadpool(snapshot)  # 404 before the stream starts

    async def stream():
        last, state = None, first
        while True:
            if state != last:
                yield samples.event("progress", state)
                last = state
            if state["state"] in FINISHED:
                yield samples.event("end", state)
                return
            if await request.is_disconnected():
                return
            await asyncio.sleep(0.5)
            state = await run_in_threadpool(snapshot)

    return StreamingResponse(stream(), media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/runs", response_model=list[RunOut], summary="your runs, newest first")
def list_runs(u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    q = select(Run).order_by(Run.created_at.desc()).limit(500)
    return [run_out(s, r) for r in s.scalars(q if u.admin else q.where(Run.owner_id == u.id))]


@router.get("/runs/{run_id}", response_model=RunOut, summary="one run: status, step, losses, its job, evaluations, "
                                                            "sampling controls and formats")
def get_run(run_id: str, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    return run_out(s, deps.owned(s, Run, run_id, u, "run"), detail=True)


@router.get("/runs/{run_id}/metrics", summary="the run's logged losses (for charts)")
def run_metrics(run_id: str, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    run = deps.owned(s, Run, run_id, u, "run")
    return {"rows": progress.curve(run.path)}


def _ready(run: Run) -> RunDir:
    if not (Path(run.path) / "model.safetensors").exists():
        raise HTTPException(409, f"run '{run.id}' has no trained weights yet (it is {run.status}); wait for its first "
                                 f"checkpoint or its job to finish")
    return RunDir(run.path)


@router.post("/runs/{run_id}/resume", status_code=202, response_model=JobOut, summary="train a run further")
def resume(run_id: str, req: ResumeRequest, request: Request, u: User = Depends(deps.user),
           s: Session = Depends(deps.session)):
    run = deps.owned(s, Run, run_id, u, "run")
    job = latest_job(s, run.id)
    if job is not None and job.state not in FINISHED:
        raise HTTPException(409, f"run '{run.id}' has a job that is {job.state}; wait for it or cancel it")
    check_jobs(s, u)
    new = Job(id=new_id(), owner_id=u.id, run_id=run.id, kind="resume", params={"train": req.model_dump()},
              total_steps=req.steps, time_limit_s=_limit_s(request, None), history=[[now().isoformat(), "queued"]],
              created_at=now())
    run.status = "queued"
    deps.audit(s, request, "run.resume", run.id, steps=req.steps, minutes=req.minutes)
    _submit(request, s, new)
    return job_out(new)


@router.post("/runs/{run_id}/retrain", status_code=202, response_model=RunOut,
             summary="train the same model again on a new version of its data; evaluates it against this run")
def retrain(run_id: str, req: RetrainRequest, request: Request, u: User = Depends(deps.user),
            s: Session = Depends(deps.session)):
    parent = deps.owned(s, Run, run_id, u, "run")
    dataset_id = req.dataset_id
    if dataset_id is None and parent.dataset_id:
        old = s.get(Dataset, parent.dataset_id)
        newest = s.scalar(select(Dataset).where(Dataset.owner_id == old.owner_id, Dataset.name == old.name)
                          .order_by(Dataset.version.desc()).limit(1))
        dataset_id = newest.id
    base = dict(parent.request or {})
    base.update(dataset_id=dataset_id, evaluate=True)
    base.update({k: v for k, v in (("steps", req.steps), ("minutes", req.minutes)) if v is not None})
    return run_out(s, new_training(request, s, u, TrainRequest(**base), parent=parent))


@router.post("/runs/{run_id}/evaluate", status_code=202, response_model=JobOut, summary="evaluate a run (a job); its "
                                                                                       "numbers join its history")
def evaluate(run_id: str, req: EvaluateRequest, request: Request, u: User = Depends(deps.user),
             s: Session = Depends(deps.session)):
    run = deps.owned(s, Run, run_id, u, "run")
    _ready(run)
    opts = req.model_dump(exclude={"real_dataset_id"})
    if req.real_dataset_id:
        opts["real"] = deps.owned(s, Dataset, req.real_dataset_id, u, "dataset").path
    check_jobs(s, u)
    job = Job(id=new_id(), owner_id=u.id, run_id=run.id, kind="evaluate", params={"evaluate": opts},
              time_limit_s=_limit_s(request, None), history=[[now().isoformat(), "queued"]], created_at=now())
    deps.audit(s, request, "run.evaluate", run.id)
    _submit(request, s, job)
    return job_out(job)


@router.get("/runs/{run_id}/evaluations", response_model=list[EvaluationOut], summary="the run's evaluation history")
def evaluations(run_id: str, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    run = deps.owned(s, Run, run_id, u, "run")
    return [eval_out(e) for e in s.scalars(select(Evaluation).where(Evaluation.run_id == run.id)
                                           .order_by(Evaluation.created_at))]


@router.get("/runs/{run_id}/report", response_class=HTMLResponse, summary="the newest evaluation report (HTML)")
def report(run_id: str, evaluation: str | None = None, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    run = deps.owned(s, Run, run_id, u, "run")
    q = select(Evaluation).where(Evaluation.run_id == run.id)
    q = q.where(Evaluation.id == evaluation) if evaluation else q.order_by(Evaluation.created_at.desc())
    ev = s.scalar(q.limit(1))
    page = Path(ev.folder) / "report.html" if ev else None
    if page is None or not page.is_file():
        raise HTTPException(404, f"run '{run.id}' has no evaluation report yet; start one with POST "
                                 f"/v1/runs/{run.id}/evaluate")
    # reports quote user data (texts, cells): shown in a sandbox, they run no script and reach no cookie
    return FileResponse(page, media_type="text/html", headers={"Content-Security-Policy": "sandbox; default-src 'none'; "
                                                                   "img-src data:; style-src 'unsafe-inline'"})


@router.get("/runs/{run_id}/thumbnail", response_class=FileResponse, summary="the latest sample grid of an image run")
def thumbnail(run_id: str, u: User = Depends(deps.user), s: Session = Depends(deps.session)):
    run = deps.owned(s, Run, run_id, u, "run")
    png = RunDir(run.path).samples_dir / "latest.png"
    if not png.is_file():
        raise HTTPException(404, f"run '{run.id}' has no sample picture (yet)")
    return FileResponse(png, media_type="image/png", headers={"Cache-Control": "no-cache"})


@router.post("/runs/{run_id}/samples", response_class=FileResponse,
             summary="generate: images as a PNG grid or .npz, rows as CSV/Parquet, texts as JSON lines")
async def generate(run_id: str, req: SampleRequest, request: Request, u: User = Depends(deps.user)):
    cfg = request.app.state.settings
    with deps.db.session(cfg.db_url) as s:
        run = deps.owned(s, Run, run_id, u, "run")
        path, model = _ready(run).path, run.model
    check_samples(u, req.n or registry.modality(run.kind).default_count)
    out, info = await run_in_threadpool(samples.generate, path, cfg.tmp_dir, req.n, req.format, req.seed, req.options)
    request.app.state.metrics.samples.labels(model).inc(int(info.get("n") or 0))
    return FileResponse(out, media_type=samples.media_type(out.suffix), filename=f"{model}-{run_id}{out.suffix}",
                        background=BackgroundTask(shutil.rmtree, out.parent, ignore_errors=True))


@router.post("/runs/{run_id}/stream", response_class=StreamingResponse,
             summary="generate one text, streamed token by token (server-sent events 'token', then 'end')")
async def stream(run_id: str, req: StreamRequest, request: Request, u: User = Depends(deps.user)):
    cfg = request.app.state.settings
    with deps.db.session(cfg.db_url) as s:
        run = deps.owned(s, Run, run_id, u, "run")
        path, model = _ready(run).path, run.model
    events_ = samples.stream_text(path, req.seed, req.options, str(cfg.home))
    request.app.state.metrics.samples.labels(model).inc()
    return StreamingResponse(events_, media_type="text/event-stream", headers=SSE_HEADERS)


@router.get("/runs/{run_id}/archive", response_class=FileResponse, summary="download the run directory (.tar.gz)")
async def archive(run_id: str, request: Request, u: User = Depends(deps.user)):
    cfg = request.app.state.settings
    with deps.db.session(cfg.db_url) as s:
        run = deps.owned(s, Run, run_id, u, "run")
        path = Path(run.path)
    if not path.is_dir():
        raise HTTPException(409, f"run '{run_id}' has no files yet (its job has not started)")
    folder = Path(tempfile.mkdtemp(prefix="archive-", dir=cfg.tmp_dir))
    target = folder / f"{path.name}.tar.gz"

    def pack():
        with tarfile.open(target, "w:gz") as tar:
            tar.add(path, arcname=path.name, filter=lambda t: None if "/." in "/" + t.name and ".tmp" in t.name else t)

    await run_in_threadpool(pack)
    return FileResponse(target, media_type="application/gzip", filename=target.name,
                        background=BackgroundTask(shutil.rmtree, folder, ignore_errors=True))
