"""Load on `genforge serve`, on the loopback address only, bounded in count and time: CLIENTS concurrent
clients ask for small samples (a PNG grid of N images) from a trained model for SECONDS while a training job
runs, then the plain Python call (`workflows.sample_to`, the function the endpoint calls) is timed the same
way in this process, so the service's overhead is a ratio.

    .venv/bin/python benchmarks/serve_load.py                          # 32 clients for 60 s (the figures)
    .venv/bin/python benchmarks/serve_load.py --clients 3 --seconds 5  # a quick check

It starts its own server (uvicorn, one process) and worker on a free port in a temporary home, trains the
model it samples from (cgan on the bundled digits), starts a second training job that runs through the
measurement, and writes p50/p95/p99 latency, requests per second and the error count of both to
benchmarks/results/serve_load.json. Torch runs with --threads threads everywhere (default 1).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

SERVER = ("import uvicorn; from genforge.app.serve.api import create_app; "
          "from genforge.app.serve.settings import load_settings; from genforge.app.serve import logs; "
          "logs.setup('warning'); uvicorn.run(create_app(load_settings()), host='127.0.0.1', port={port}, "
          "log_config=None, log_level='warning')")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def figures(latencies: list[float], seconds: float, errors: int) -> dict:
    ms = sorted(x * 1000 for x in latencies)

    def q(p):
        return round(ms[min(len(ms) - 1, int(p / 100 * len(ms)))], 2) if ms else None

    return {"requests": len(ms), "errors": errors, "seconds": round(seconds, 2),
            "rps": round(len(ms) / seconds, 2) if seconds else None, "p50_ms": q(50), "p95_ms": q(95), "p99_ms": q(99),
            "mean_ms": round(statistics.fmean(ms), 2) if ms else None}


async def load(base: str, token: str, run_id: str, clients: int, seconds: float, n: int) -> dict:
    import httpx

    latencies, errors, kinds = [], 0, {}
    deadline = time.perf_counter() + seconds
    headers = {"Authorization": f"Bearer {token}"}
    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)

    async def client(i: int, http: httpx.AsyncClient) -> None:
        nonlocal errors
        k = 0
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                r = await http.post(f"{base}/v1/runs/{run_id}/samples", headers=headers,
                                    json={"n": n, "format": "png", "seed": i * 100_000 + k})
                ok = r.status_code == 200 and r.content.startswith(b"\x89PNG")
                if not ok:
                    kinds[str(r.status_code)] = kinds.get(str(r.status_code), 0) + 1
            except httpx.HTTPError as err:
                ok = False
                kinds[type(err).__name__] = kinds.get(type(err).__name__, 0) + 1
            if ok:
                latencies.append(time.perf_counter() - t0)
            else:
                errors += 1
            k += 1

    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await http.post(f"{base}/v1/runs/{run_id}/samples", headers=headers, json={"n": n, "format": "png"})  # warm-up
        t0 = time.perf_counter()
        deadline = t0 + seconds
        await asyncio.gather(*(client(i, http) for i in range(clients)))
    out = figures(latencies, time.perf_counter() - t0, errors)
    out["error_kinds"] = kinds
    return out


def plain(run_path: str, seconds: float, n: int, tmp: Path) -> dict:
    from genforge.app.workflows import sample_to

    latencies, k = [], 0
    sample_to(run_path, n, tmp / "warm-up.png", seed=0, force=True)  # imports and first-call costs, untimed
    t0 = time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        s = time.perf_counter()
        sample_to(run_path, n, tmp / f"plain-{k % 4}.png", seed=k, force=True)
        latencies.append(time.perf_counter() - s)
        k += 1
    return figures(latencies, time.perf_counter() - t0, 0)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--clients", type=int, default=32)
    ap.add_argument("--seconds", type=float, default=60.0)
    ap.add_argument("--n", type=int, default=16, help="images per request")
    ap.add_argument("--train-steps", type=int, default=300, help="steps of the model that is sampled")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", type=Path, default=ROOT / "benchmarks" / "results" / "serve_load.json")
    args = ap.parse_args()
    if not 1 <= args.clients <= 256 or not 0 < args.seconds <= 600:
        ap.error("--clients must be 1..256 and --seconds 0..600 (this is a bounded load test)")
    os.environ["OMP_NUM_THREADS"] = str(args.threads)
    import httpx
    import torch

    torch.set_num_threads(args.threads)
    from genforge.app.serve import db, server
    from genforge.app.serve.auth import create_token
    from genforge.app.serve.models import Run
    from genforge.app.serve.settings import load_settings
    from genforge.core.io import write_json

    with tempfile.TemporaryDirectory(prefix="genforge-serve-load-") as tmp:
        tmp = Path(tmp)
        settings = load_settings(tmp / "home", threads=args.threads)
        server.prepare(settings)
        with db.session(settings.db_url) as s:
            token, _ = create_token(s, "load", "user", {"rpm": 10_000_000, "max_jobs": 10, "max_samples": 100_000})
        env = {**os.environ, **settings.env(), "PYTHONPATH": str(ROOT)}
        port = free_port()
        base = f"http://127.0.0.1:{port}"
        logs = open(tmp / "processes.log", "wb")
        procs = [subprocess.Popen([sys.executable, "-m", "genforge.app.cli", "worker"], env=env, stdout=logs,
                                  stderr=subprocess.STDOUT),
                 subprocess.Popen([sys.executable, "-c", SERVER.format(port=port)], env=env, stdout=logs,
                                  stderr=subprocess.STDOUT)]
        try:
            for _ in range(300):
                try:
                    if httpx.get(f"{base}/readyz", timeout=2).status_code == 200:
                        break
                except httpx.HTTPError:
                    time.sleep(0.2)
            h = {"Authorization": f"Bearer {token}"}
            model = {"model": "cgan", "options": {"width": 16, "batch_size": 32}}
            run = httpx.post(f"{base}/v1/jobs", headers=h, json={**model, "steps": args.train_steps}).json()
            while httpx.get(f"{base}/v1/jobs/{run['job']['id']}", headers=h).json()["state"] not in (
                    "finished", "failed"):
                time.sleep(0.5)
            busy_minutes = (2 * args.seconds + 60) / 60
            busy = httpx.post(f"{base}/v1/jobs", headers=h, json={**model, "minutes": busy_minutes}).json()
            while httpx.get(f"{base}/v1/jobs/{busy['job']['id']}", headers=h).json()["state"] != "running":
                time.sleep(0.5)
            with db.session(settings.db_url) as s:
                run_path = s.get(Run, run["id"]).path
            print(f"service: {args.clients} clients for {args.seconds:.0f} s, {args.n} images per request, while "
                  f"training runs", flush=True)
            service = asyncio.run(load(base, token, run["id"], args.clients, args.seconds, args.n))
            still = httpx.get(f"{base}/v1/jobs/{busy['job']['id']}", headers=h).json()["state"]
            print(f"plain Python: workflows.sample_to for {args.seconds:.0f} s (training still {still})", flush=True)
            python = plain(run_path, args.seconds, args.n, tmp)
            training = httpx.get(f"{base}/v1/jobs/{busy['job']['id']}", headers=h).json()
            httpx.post(f"{base}/v1/jobs/{busy['job']['id']}/cancel", headers=h)
        finally:
            for p in procs:
                p.terminate()
            for p in procs:
                try:
                    p.wait(60)
                except subprocess.TimeoutExpired:
                    p.kill()
    result = {"clients": args.clients, "seconds": args.seconds, "n_per_request": args.n, "threads": args.threads,
              "cpus": os.cpu_count(), "service": service, "python": python,
              "ratio_p50": round(service["p50_ms"] / python["p50_ms"], 2) if service["p50_ms"] and python["p50_ms"]
              else None, "training_during_load": {"state": still, "steps_per_second": training.get("steps_per_second")}}
    args.out.parent.mkdir(parents=True, exist_ok=True)
    write_json(args.out, result)
    print(json.dumps(result, indent=2))
    print("\n| path | requests | errors | req/s | p50 ms | p95 ms | p99 ms |\n| --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for name, r in (("service (HTTP)", service), ("plain Python call", python)):
        print(f"| {name} | {r['requests']} | {r['errors']} | {r['rps']} | {r['p50_ms']} | {r['p95_ms']} | {r['p99_ms']} |")


if __name__ == "__main__":
    main()
