"""Generation: ``workflows.sample_to`` into a temporary file the response then sends (images as a PNG
grid or ``.npz``, rows as CSV/Parquet, texts as JSON lines), and text streamed token by token over
server-sent events through the ``stream`` callback the CLI uses for the terminal.

Which controls apply is the modality's ``sample_options``; a path-valued control (``prompt_file``) is
refused, since clients never name server files.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import shutil
import tempfile
import threading
from pathlib import Path
from typing import Any, AsyncIterator

from genforge.app import workflows
from genforge.core import registry
from genforge.core.errors import ConfigError, GenforgeError

PATH_OPTIONS = ("prompt_file",)
MEDIA = {".npz": "application/zip", ".parquet": "application/vnd.apache.parquet", ".jsonl": "application/x-ndjson",
         ".csv": "text/csv", ".png": "image/png", ".txt": "text/plain"}


def controls(options: dict[str, Any]) -> dict[str, Any]:
    """The sampling controls a client may give: any modality's ``sample_options`` but path-valued ones
    (those that do not apply to this run's modality are refused by ``sample_to`` with its own message)."""
    known = set().union(*(m.sample_options for m in registry.modalities())) - set(PATH_OPTIONS)
    bad = [k for k in options if k not in known]
    if bad:
        raise ConfigError(f"unknown sampling option(s) {', '.join(sorted(map(str, bad)))[:200]}; the options are "
                          f"{', '.join(sorted(known))} (each applies to one kind of model)")
    return {k: v for k, v in options.items() if v is not None}


def media_type(suffix: str) -> str:
    return MEDIA.get(suffix) or mimetypes.types_map.get(suffix) or "application/octet-stream"


def generate(run_path: Path, tmp_dir: Path, n: int | None, fmt: str, seed: int | None,
             options: dict[str, Any]) -> tuple[Path, dict[str, Any]]:
    """Sample into ``tmp_dir/<new folder>/samples.<fmt>``; returns the file and what ``sample_to`` said.
    The caller removes the folder once the file is sent."""
    mod = registry.modality_of(run_path)
    suffix = "." + fmt
    if suffix not in mod.formats():
        raise ConfigError(f"format '{fmt}' is not one {mod.plural} are written in; use "
                          f"{', '.join(s.lstrip('.') for s in mod.formats())}")
    folder = Path(tempfile.mkdtemp(prefix="sample-", dir=tmp_dir))
    out = folder / f"samples{suffix}"
    try:
        info = workflows.sample_to(run_path, n, out, seed=seed, **_typed(controls(options)))
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)
        raise
    return out, info


def _typed(options: dict[str, Any]) -> dict[str, Any]:
    """JSON values as the workflows take them: a ``where`` object stays a dict, a label a string; a
    control given a list or object where one value belongs is refused in one line."""
    out = {}
    for k, v in options.items():
        if k == "stop":
            v = [v] if isinstance(v, str) else v
            if not isinstance(v, list) or not all(isinstance(x, str) for x in v):
                raise ConfigError("stop must be a string or a list of strings")
        elif k == "where":
            if not isinstance(v, (str, dict)):
                raise ConfigError('where must be "column=value,..." or an object {"column": "value"}')
            if isinstance(v, dict):
                v = {str(c): x for c, x in v.items()}
        elif k == "label":
            if isinstance(v, (list, dict)) or isinstance(v, bool):
                raise ConfigError("label must be one class: its index or its name")
            v = str(v)
        elif isinstance(v, (list, dict)):
            raise ConfigError(f"{k} takes one value, not a list or an object")
        elif k == "prompt" and not isinstance(v, str):
            v = str(v)
        out[k] = v
    return out


def event(kind: str, data: Any) -> bytes:
    return f"event: {kind}\ndata: {json.dumps(data)}\n\n".encode()


def stream_text(run_path: Path, seed: int | None, options: dict[str, Any], home: str) -> AsyncIterator[bytes]:
    """Server-sent events of one generated text: ``token`` events as the model writes, then ``end`` (or
    ``error`` with the one-line message). The run and the controls are checked before the stream starts."""
    mod = registry.modality_of(run_path)
    if not mod.streams_samples:
        raise ConfigError(f"streaming is for models that write text; sample {mod.plural} with POST "
                          f"/v1/runs/{{id}}/samples")
    return _events(run_path, seed, _typed(controls(options)), home)


async def _events(run_path: Path, seed: int | None, opts: dict[str, Any], home: str) -> AsyncIterator[bytes]:
    from genforge.app.serve.errors import public

    loop = asyncio.get_running_loop()
    q: asyncio.Queue = asyncio.Queue()

    def put(item) -> None:
        loop.call_soon_threadsafe(q.put_nowait, item)

    def work() -> None:
        try:
            workflows.sample_to(run_path, 1, None, seed=seed, stream=lambda text: put(("token", text)), **opts)
            put(("end", None))
        except GenforgeError as err:
            put(("error", public(str(err), home)))
        except Exception as err:  # noqa: BLE001 - a stream cannot change its status any more: say it in the stream
            put(("error", f"internal error ({type(err).__name__}); see the server log"))

    threading.Thread(target=work, daemon=True).start()
    while True:
        kind, value = await q.get()
        if kind == "token":
            yield event("token", {"text": value})
        elif kind == "end":
            yield event("end", {})
            return
        else:
            yield event("error", {"message": value})
            return
