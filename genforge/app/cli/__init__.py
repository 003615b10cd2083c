"""The ``genforge`` command: thin typer commands that parse, call the Python API and print.

Every user-fixable problem surfaces as a one-line ``error: ...`` with a non-zero exit code (2), never a
traceback (:func:`main`). The commands live by concern: :mod:`.train` (quickstart, train, resume),
:mod:`.use` (sample, impute, evaluate), :mod:`.listing` (models, runs), :mod:`.augment`,
:mod:`.serve` (serve, worker, token); importing this
package registers them all on the one typer ``app``.
"""

from __future__ import annotations

import sys

import typer

from genforge.app.cli.common import app, err, one_line, out
# each module registers its commands on `app`, in the order `genforge --help` lists them
from genforge.app.cli import train  # noqa: F401,E402
from genforge.app.cli import use  # noqa: F401,E402
from genforge.app.cli import listing  # noqa: F401,E402
from genforge.app.cli import augment  # noqa: F401,E402
from genforge.app.cli import serve  # noqa: F401,E402
from genforge.core.errors import GenforgeError

__all__ = ["app", "main"]


def _print_warnings_as_lines() -> None:
    """Show genforge's warnings as one ``warning:`` line each on stderr (others as Python shows them)."""
    import warnings

    from genforge.core.errors import GenforgeWarning

    if getattr(warnings.showwarning, "genforge", False):
        return  # installed already (main() called again in one process)
    default = warnings.showwarning

    def show(message, category, filename, lineno, file=None, line=None):
        if issubclass(category, GenforgeWarning):
            err.print(f"[yellow]warning:[/] {one_line(str(message))}", highlight=False, soft_wrap=True)
        else:
            default(message, category, filename, lineno, file, line)

    show.genforge = True
    warnings.showwarning = show
    warnings.simplefilter("always", GenforgeWarning)



def _fail(message: str) -> None:
    """Print the one ``error:`` line (first process only) and exit with code 2."""
    from genforge.core.train.distributed import is_writer

    if is_writer():  # with several processes the first one says it, once
        err.print(f"[bold red]error:[/] {one_line(message)}", highlight=False, soft_wrap=True)
    sys.exit(2)


def _out_of_memory(e: BaseException) -> bool:
    """Whether ``e`` is an allocation failure (Python's, torch's CPU allocator's, or CUDA's)."""
    text = str(e)
    return isinstance(e, MemoryError) or "can't allocate memory" in text or "out of memory" in text.lower()


def main() -> None:
    """Entry point: run the app, turning user errors into one-line messages (exit code 2)."""
    from genforge.core.train.distributed import PeerLost

    # typer may ship its own copy of click: take its usage-error class from one of typer's own exceptions
    usage_error = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
    _print_warnings_as_lines()
    try:
        code = app(standalone_mode=False)  # usage errors come here, to be said in one line like the rest
        sys.exit(code if isinstance(code, int) else 0)
    except usage_error as e:
        if type(e).__name__ == "NoArgsIsHelpError" and e.ctx is not None:  # plain 'genforge': the help
            out.print(e.ctx.get_help())
            sys.exit(0)
        where = f"'{e.ctx.command_path} --help'" if e.ctx is not None else "'genforge --help'"
        said = " ".join(e.format_message().split()).rstrip(".")
        _fail(f"{said}; see {where}")
    except typer.Abort:
        _fail("aborted")
    except PeerLost:
        sys.exit(3)  # the launcher says what happened, once
    except GenforgeError as e:
        _fail(str(e))
    except OSError as e:  # a safety net: every write maps its own errors; this catches what else the OS refuses
        from genforge.core.io import os_error_message

        _fail(os_error_message(e, e.filename or "a file", "use"))
    except (MemoryError, RuntimeError) as e:
        if not _out_of_memory(e):
            raise
        _fail(f"ran out of memory ({' '.join(str(e).split())[:160] or 'MemoryError'}); ask for less at once "
              f"(a smaller -n, --size or --batch-size), or run it on a machine with more memory")
    finally:
        from genforge.core.train.distributed import shutdown

        shutdown()  # leave the process group before exit (gloo aborts the process otherwise)


