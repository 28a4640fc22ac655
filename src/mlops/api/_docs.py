"""``/api/docs``: a self-contained page listing every operation of the OpenAPI schema.

No script, stylesheet or font is loaded from anywhere (the Content-Security-Policy says
so too): the page works offline and leaks nothing to a CDN.
"""

from __future__ import annotations

import html
from typing import Any

from starlette.requests import Request
from starlette.responses import HTMLResponse

__all__ = ["render_docs"]

_STYLE = """
body{font:15px/1.5 system-ui,sans-serif;max-width:980px;margin:2em auto;padding:0 1em;color:#222}
h2{margin-top:1.6em;border-bottom:1px solid #ddd}
details{border:1px solid #e3e3e3;border-radius:6px;margin:.4em 0;padding:.3em .7em}
summary{cursor:pointer}
code,pre{font-family:ui-monospace,monospace;font-size:13px}
pre{background:#f6f8fa;padding:.6em;overflow:auto}
.m{display:inline-block;width:4.5em;font-weight:600}
.GET{color:#0969da}.POST{color:#1a7f37}.PUT{color:#9a6700}
.PATCH{color:#8250df}.DELETE{color:#cf222e}
table{border-collapse:collapse}td{padding:.1em .8em .1em 0;vertical-align:top}
"""

_CSP = "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"


def render_docs(schema: dict[str, Any], *, prefix: str, schema_url: str) -> str:
    """The HTML of the docs page for an OpenAPI ``schema`` served under ``prefix``."""
    esc = html.escape
    info = schema.get("info", {})
    groups: dict[str, list[str]] = {}
    for path, operations in schema.get("paths", {}).items():
        for method, operation in operations.items():
            tag = (operation.get("tags") or ["other"])[0]
            groups.setdefault(tag, []).append(_operation(prefix + path, method.upper(), operation))
    sections = "".join(
        f"<h2>{esc(tag)}</h2>{''.join(items)}" for tag, items in sorted(groups.items())
    )
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        f"<title>{esc(info.get('title', 'API'))}</title><style>{_STYLE}</style></head><body>"
        f"<h1>{esc(info.get('title', 'API'))} <small>{esc(info.get('version', ''))}</small></h1>"
        f"<p>{esc(info.get('description', ''))}</p>"
        f'<p>Machine-readable schema: <a href="{esc(schema_url)}">{esc(schema_url)}</a></p>'
        f"{sections}</body></html>"
    )


def _operation(path: str, method: str, operation: dict[str, Any]) -> str:
    esc = html.escape
    rows = "".join(
        f"<tr><td><code>{esc(p['name'])}</code></td><td>{esc(p.get('in', ''))}</td>"
        f"<td>{'required' if p.get('required') else ''}</td>"
        f"<td>{esc(p.get('description', ''))}</td></tr>"
        for p in operation.get("parameters", [])
    )
    body = operation.get("requestBody", {}).get("content", {})
    body_text = "".join(
        f"<p>Body ({esc(kind)}): <code>{esc(_schema_name(spec.get('schema', {})))}</code></p>"
        for kind, spec in body.items()
    )
    statuses = ", ".join(esc(code) for code in operation.get("responses", {}))
    return (
        f"<details><summary><span class='m {method}'>{method}</span> <code>{esc(path)}</code>"
        f" — {esc(operation.get('summary', ''))}</summary>"
        f"{f'<table>{rows}</table>' if rows else ''}{body_text}"
        f"<p>Responses: {statuses}</p></details>"
    )


def _schema_name(schema: dict[str, Any]) -> str:
    ref = schema.get("$ref")
    return str(ref).rsplit("/", 1)[-1] if ref else str(schema.get("type", "object"))


def docs_response(schema: dict[str, Any], request: Request, *, prefix: str) -> HTMLResponse:
    page = render_docs(schema, prefix=prefix, schema_url=f"{prefix}/openapi.json")
    return HTMLResponse(page, headers={"content-security-policy": _CSP})
