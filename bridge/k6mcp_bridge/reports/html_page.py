"""The HTML report's page: the template, the Content-Security-Policy and the escaping.

The page is one file with no reference to anything outside it. Its policy (a ``<meta>`` tag)
is ``default-src 'none'`` plus the sha256 of each inline script and style, so the browser runs
exactly the vendored uPlot and ``assets/report.js`` and loads nothing at all (no image, font,
frame or connection). Data reaches the page two ways, both inert:

* server-side text (header, tables) through :func:`html.escape`;
* the charts' numbers and labels as JSON in ``<script type="application/json">`` (never
  executed), with ``<``, ``>``, ``&``, U+2028 and U+2029 written as ``\\uXXXX`` so no string in
  it can close the element (:func:`json_for_script`); the script reads it with ``JSON.parse``
  and puts every label in the page through ``textContent``.
"""

from __future__ import annotations

import base64
import hashlib
import html
import json
from functools import cache
from importlib.resources import files
from typing import Any

_ESCAPES = {
    "<": "\\u003c",
    ">": "\\u003e",
    "&": "\\u0026",
    "\u2028": "\\u2028",
    "\u2029": "\\u2029",
}


def json_for_script(value: Any) -> str:
    """JSON safe inside ``<script type="application/json">`` (and valid JSON still)."""
    text = json.dumps(value, ensure_ascii=False, separators=(",", ":"), allow_nan=False)
    for char, escape in _ESCAPES.items():
        text = text.replace(char, escape)
    return text


def esc(value: object) -> str:
    return html.escape(str(value), quote=True)


@cache
def asset(name: str) -> str:
    """A packaged file: ``vendor/uplot/uPlot.iife.min.js``, ``assets/report.js`` ..."""
    folder = files("k6mcp_bridge.reports")
    for part in name.split("/"):
        folder = folder / part
    return folder.read_text(encoding="utf-8")


def sha256_source(text: str) -> str:
    digest = hashlib.sha256(text.encode("utf-8")).digest()
    return "'sha256-" + base64.b64encode(digest).decode("ascii") + "'"


@cache
def _static() -> tuple[list[str], list[str], str]:
    scripts = [asset("vendor/uplot/uPlot.iife.min.js"), asset("assets/report.js")]
    styles = [asset("vendor/uplot/uPlot.min.css"), asset("assets/report.css")]
    for text in scripts + styles:
        if "</script" in text.lower() or "</style" in text.lower():  # pragma: no cover
            raise ValueError("an inline asset would close its element")
    policy = "; ".join(
        [
            "default-src 'none'",
            "script-src " + " ".join(sha256_source(text) for text in scripts),
            "style-src " + " ".join(sha256_source(text) for text in styles),
            "img-src data:",
            "base-uri 'none'",
            "form-action 'none'",
        ]
    )
    return scripts, styles, policy


def csp() -> str:
    """The report's Content-Security-Policy."""
    return _static()[2]


def page(
    *,
    title: str,
    top: str,
    bottom: str,
    data: Any,
    summary: Any,
    refresh_s: float | None,
) -> str:
    """The whole document. ``top``, ``bottom``: already-escaped HTML above and below the
    charts (header, thresholds, checks; the tables); ``data``: the charts'
    JSON; ``summary``: the handleSummary-shaped JSON offered as a download; ``refresh_s``: the
    live version's reload interval (``None`` in the final one)."""
    scripts, styles, policy = _static()
    refresh = (
        f'<meta http-equiv="refresh" content="{max(1, round(refresh_s))}">\n'
        if refresh_s is not None
        else ""
    )
    style_tags = "".join(f"<style>{text}</style>\n" for text in styles)
    script_tags = "".join(f"<script>{text}</script>\n" for text in scripts)
    return (
        "<!doctype html>\n"
        '<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f'<meta http-equiv="Content-Security-Policy" content="{esc(policy)}">\n'
        '<meta name="referrer" content="no-referrer">\n'
        '<meta name="viewport" content="width=device-width, initial-scale=1">\n'
        f"{refresh}<title>{esc(title)}</title>\n{style_tags}</head>\n<body>\n{top}\n"
        '<h2>Charts</h2>\n<p class="note">Drag across a chart to zoom; double-click to reset. '
        "All charts share one cursor.</p>\n"
        f'<div id="charts"></div>\n{bottom}\n'
        f'<script type="application/json" id="data">{json_for_script(data)}</script>\n'
        f'<script type="application/json" id="summary">{json_for_script(summary)}</script>\n'
        f"{script_tags}</body>\n</html>\n"
    )
