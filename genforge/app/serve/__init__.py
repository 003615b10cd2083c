"""``genforge serve``: the HTTP service, job queue and web UI over the same jobs the CLI runs.

Layout (one concept per module)::

    settings   where the service keeps its state (home folder, database URL, queue URL, limits)
    db         the SQLAlchemy engine and sessions; Alembic migrations run at start-up
    models     the tables: tokens, datasets, runs, jobs, evaluations, workers, audit
    auth       Bearer tokens (random, shown once, stored as SHA-256), roles, the current user
    limits     per-token limits: requests per minute, concurrent jobs, samples, upload size
    errors     GenforgeError -> 4xx JSON with the same one-line message
    uploads    datasets: size-limited uploads, safe names, zip checks, validated by the readers
    jobs       the huey queue and its one task (run a job in a child process), recovery of
               jobs whose worker died
    runner     the child process: calls genforge.app.workflows (train_run, resume_run, evaluate_run)
    progress   a run directory's progress (step, losses, steps per second, ETA) read from its files
    samples    generation through workflows.sample_to, and streamed text over SSE
    api*       the FastAPI app under /v1 (OpenAPI at /docs), health and metrics
    ui         the web UI (Jinja2 templates + a little plain JavaScript)
    metrics    Prometheus metrics
    logs       JSON logs with a request id
    worker     ``genforge worker``: a huey consumer plus the recovery loop
    server     ``genforge serve``: migrate, first admin token, a worker, uvicorn

The run directories stay the source of truth for models; the database indexes them. The service
reaches modalities only through the registry, so a family or modality that registers is served
without changes here.
"""
