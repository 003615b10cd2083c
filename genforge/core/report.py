"""What every modality's HTML evaluation report shares: plots inlined as PNG, number formatting,
rendering a package's ``templates/report.html.j2`` and writing the page atomically.

Reports are self-contained (every image is a base64 PNG in the page), so they open offline.
"""

from __future__ import annotations

import base64
import io as _io
from pathlib import Path
from typing import Any

import numpy as np

from genforge.core import io

TEMPLATE = "report.html.j2"


def pyplot():
    """``matplotlib.pyplot`` on the non-interactive Agg backend (reports are written without a display)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def fig_png(fig, dpi: int = 100) -> str:
    """A matplotlib figure as base64 PNG text (for ``<img src="data:image/png;base64,...">``); closes it."""
    buf = _io.BytesIO()
    fig.savefig(buf, format="png", dpi=dpi, bbox_inches="tight")
    pyplot().close(fig)
    return base64.b64encode(buf.getvalue()).decode()


def format_number(v: Any) -> str:
    """A metric value for a report cell: ``—`` for None/NaN/inf, integers and bools as they are,
    4 significant digits, scientific notation below 0.001."""
    if v is None:
        return "—"
    if isinstance(v, (bool, np.bool_, int, np.integer)):
        return str(v)
    v = float(v)
    if not np.isfinite(v):
        return "—"
    return f"{v:.4g}" if abs(v) >= 1e-3 or v == 0 else f"{v:.2e}"


def privacy_banner(plan: dict | None) -> str:
    """The HTML paragraph every report of a differentially private run opens with (empty for other runs):
    the guarantee, what it protects and what preprocessing saw the data."""
    if not plan:
        return ""
    from html import escape

    from genforge.core.privacy import describe

    lines = [f"<b>Differential privacy:</b> {escape(describe(plan))}"]
    for key, label in (("private", "protected"), ("unit", "per"), ("preprocessing", "preprocessing"),
                       ("sampling", "sampling")):
        if plan.get(key):
            lines.append(f"{label}: {escape(str(plan[key]))}")
    return ('<p class="privacy" style="border:1px solid #b5d3b5;background:#f3faf3;padding:.5rem .8rem">'
            + "<br>".join(lines) + "</p>")


def write_report(path: str | Path, package: str, **context: Any) -> Path:
    """Render ``package``'s ``templates/report.html.j2`` with ``context`` (plus ``fmt`` =
    :func:`format_number` and genforge's ``version``) and write it atomically to ``path``."""
    from jinja2 import Environment, PackageLoader, select_autoescape

    from genforge.core.version import __version__

    env = Environment(loader=PackageLoader(package, "templates"), autoescape=select_autoescape())
    html = env.get_template(TEMPLATE).render(fmt=format_number, version=__version__, **context)
    banner = privacy_banner(context.get("privacy"))
    if banner:
        html = html.replace("<body>", "<body>\n" + banner, 1)
    path = Path(path)
    io.write_text(path, html)
    return path
