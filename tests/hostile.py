"""Helpers of the hostile-input suite: run the CLI in this process and check the promise it keeps.

The promise, for every command and every input: exit code 0, or 2 with exactly one ``error:`` line on
stderr naming the problem and the fix; never a traceback; nothing half-written (no temporary files,
no output file after a failure); no input file changed.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import shutil
import sys
from pathlib import Path

from conftest import ANSI

GENERATED = {"count": 0}  # generated cases run, summed by the suite (for the closing note)


def cli(*args) -> tuple[int, str, str]:
    """``genforge ARGS`` through ``genforge.app.cli.main`` in this process: ``(exit code, stdout, stderr)``."""
    from genforge.app import cli as cli_module

    out, err = io.StringIO(), io.StringIO()
    old_argv = sys.argv
    sys.argv = ["genforge", *map(str, args)]
    code = 0
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            cli_module.main()
    except SystemExit as e:
        code = e.code if isinstance(e.code, int) else (0 if e.code is None else 1)
    finally:
        sys.argv = old_argv
        from genforge.core.limits import set_memory_limit

        set_memory_limit(None)
    GENERATED["count"] += 1
    return code, ANSI.sub("", out.getvalue()), ANSI.sub("", err.getvalue())


def assert_kept_promise(code: int, out: str, err: str, ok=(0,)) -> None:
    """Exit code in ``ok`` (any warnings aside) or 2 with one ``error:`` line; never a traceback."""
    assert "Traceback" not in out + err, err[-3000:]
    if code == 2:
        lines = [line for line in err.strip().splitlines() if not line.startswith("warning:")]
        assert len(lines) == 1 and lines[0].startswith("error: "), err
    else:
        assert code in ok, (code, out, err)


def fingerprint(folder: Path) -> dict[str, str]:
    """``{relative path: sha256}`` of every file under ``folder`` (to show nothing changed)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(Path(folder).rglob("*")) if p.is_file()}


def temp_leftovers(folder: Path) -> list[Path]:
    """Temporary files or staging folders an interrupted write would leave (``.NAME.*.tmp*``)."""
    return [p for p in Path(folder).rglob(".*") if ".tmp" in p.name]


def fresh_copy(src: Path, dst: Path) -> Path:
    """A copy of run directory ``src`` at ``dst`` (replacing what was there)."""
    if dst.exists():
        shutil.rmtree(dst)
    shutil.copytree(src, dst)
    return dst
