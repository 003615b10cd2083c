"""Limits a person can set: how much memory one request may take before genforge refuses to start it.

Every request that can be big (an image size, a sample count, a table's rows, a text's length) is
estimated before any work starts and compared with :func:`memory_limit`: by default half of this
machine's RAM, raised or lowered with ``--memory-limit 32G`` on the command line or the
``GENFORGE_MEMORY_LIMIT`` environment variable. Outputs that can be written in chunks (sample
files) are streamed, so their size is bounded by the disk, not by memory.
"""

from __future__ import annotations

import os
import re

from genforge.core.errors import ConfigError, LimitError

ENV = "GENFORGE_MEMORY_LIMIT"
_UNITS = {"": 1, "B": 1, "K": 2**10, "M": 2**20, "G": 2**30, "T": 2**40}
_override: int | None = None
MIN_LIMIT = 64 * 2**20


def parse_size(text: str | int) -> int:
    """``"32G"``, ``"512M"``, ``"1.5T"`` or a number of bytes -> bytes."""
    if isinstance(text, int) and not isinstance(text, bool):
        return text
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(?:I?B)?\s*", str(text), flags=re.IGNORECASE)
    if found is None or float(found.group(1)) <= 0:
        raise ConfigError(f"memory limit '{text}' is not a size; write it like 8G, 512M or 1.5T")
    size = int(float(found.group(1)) * _UNITS[found.group(2).upper()])
    if size < MIN_LIMIT:
        raise ConfigError(f"memory limit '{text}' is below {human(MIN_LIMIT)}, too little to do anything; give e.g. 8G")
    return size


def physical_memory() -> int:
    """Bytes of RAM on this machine (0 when the system does not say)."""
    try:
        return int(os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE"))
    except (ValueError, OSError, AttributeError):
        return 0


def set_memory_limit(value: str | int | None) -> None:
    """Set the limit for this process (``--memory-limit``); None goes back to the default."""
    global _override
    _override = None if value is None else parse_size(value)


def memory_limit() -> int:
    """The current limit in bytes: ``--memory-limit``, else ``$GENFORGE_MEMORY_LIMIT``, else half the RAM."""
    if _override is not None:
        return _override
    if os.environ.get(ENV):
        return parse_size(os.environ[ENV])
    return physical_memory() // 2 or 8 * 2**30


def human(nbytes: float) -> str:
    """Bytes as a short human figure: ``1.5 GiB``."""
    for unit in ("B", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if abs(nbytes) < 1024 or unit == "PiB":
            return f"{nbytes:.0f} {unit}" if unit == "B" else f"{nbytes:.1f} {unit}"
        nbytes /= 1024
    return f"{nbytes:.1f} PiB"  # pragma: no cover


def check_memory(nbytes: float, what: str, fix: str) -> None:
    """Refuse (one-line :class:`LimitError`) a request estimated to need ``nbytes`` of memory over the limit.

    ``what`` says what needs it ("resizing 1,797 images to 4096x4096"), ``fix`` how to ask for less."""
    limit = memory_limit()
    if nbytes > limit:
        source = ("--memory-limit" if _override is not None else f"${ENV}" if os.environ.get(ENV)
                  else "the default, half of this machine's RAM")
        raise LimitError(f"{what} needs about {human(nbytes)} of memory, more than the limit of {human(limit)} "
                         f"({source}); {fix}, or raise the limit with --memory-limit SIZE (e.g. 32G)")
