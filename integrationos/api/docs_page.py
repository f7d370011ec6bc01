"""The API reference page (``GET /v1/docs``): the OpenAPI document rendered to plain HTML on
the server, with inline CSS only, so it works offline and behind strict CSPs (no CDN, no
JavaScript)."""

from __future__ import annotations

from html import escape
from typing import Any

_CSS = """
body{font:15px/1.5 system-ui,sans-serif;max-width:62rem;margin:2rem auto;padding:0 1rem;
color:#1b1f24}
h1{margin-bottom:.2rem}h2{border-bottom:1px solid #d0d7de;padding-bottom:.3rem;margin-top:2.5rem}
section.op{border:1px solid #d0d7de;border-radius:6px;padding:.4rem 1rem;margin:1rem 0}
code,pre{font:13px ui-monospace,monospace;background:#f6f8fa;padding:.1rem .3rem;
border-radius:4px}
pre{padding:.6rem;overflow-x:auto}
table{border-collapse:collapse;width:100%;margin:.4rem 0}
th,td{border:1px solid #d0d7de;padding:.25rem .5rem;text-align:left;vertical-align:top}
th{background:#f6f8fa}
.m{display:inline-block;min-width:4rem;text-align:center;border-radius:4px;color:#fff;
font-weight:600;font-size:12px;padding:.1rem .4rem;margin-right:.5rem}
.get{background:#0969da}.post{background:#1a7f37}.patch{background:#9a6700}
.delete{background:#cf222e}
nav a{margin-right:1rem}
"""

_ERROR_EXAMPLE = """{"error": {"code": "VALIDATION_FAILED",
           "message": "the request body is invalid",
           "details": [{"field": "/name", "message": "is required"}]}}"""


def _schema_name(ref: str) -> str:
    return ref.rsplit("/", 1)[-1]


def _type(schema: dict[str, Any]) -> str:
    """A short, linked description of a schema's type."""
    if "$ref" in schema:
        name = escape(_schema_name(schema["$ref"]))
        return f'<a href="#schema-{name}">{name}</a>'
    if "anyOf" in schema:
        return " or ".join(_type(s) for s in schema["anyOf"])
    kind = schema.get("type", "any JSON")
    if isinstance(kind, list):
        kind = " or ".join(kind)
    if kind == "array" and "items" in schema:
        return f"array of {_type(schema['items'])}"
    return escape(str(kind))


def _constraints(schema: dict[str, Any]) -> str:
    notes = []
    for key, label in (("enum", "one of"), ("default", "default"), ("minLength", "min length"),
                       ("maxLength", "max length"), ("pattern", "pattern"),
                       ("format", "format"), ("x-message", "rule")):
        if key in schema:
            value = schema[key]
            shown = ", ".join(map(str, value)) if isinstance(value, list) else str(value)
            notes.append(f"{label}: <code>{escape(shown)}</code>")
    for part in schema.get("anyOf", []):
        if isinstance(part, dict) and part.get("type") != "null":
            notes.append(_constraints(part))
    return "; ".join(n for n in notes if n)


def _fields(schema: dict[str, Any]) -> str:
    properties = schema.get("properties")
    if not properties:
        description = schema.get("description", "")
        return f"<p>{_type(schema)}. {escape(description)}</p>"
    required = set(schema.get("required", []))
    rows = "".join(
        f"<tr><td><code>{escape(name)}</code></td><td>{_type(prop)}</td>"
        f"<td>{'yes' if name in required else ''}</td>"
        f"<td>{escape(prop.get('description', ''))} {_constraints(prop)}</td></tr>"
        for name, prop in properties.items()
    )
    closed = " Unknown fields are refused." if schema.get("additionalProperties") is False else ""
    return ("<table><tr><th>Field</th><th>Type</th><th>Required</th><th>Notes</th></tr>"
            f"{rows}</table><p>{closed}</p>")


def _operation(method: str, path: str, op: dict[str, Any], doc: dict[str, Any]) -> str:
    parts = [
        f'<section class="op" id="{escape(op["operationId"])}">',
        f'<h3><span class="m {method}">{method.upper()}</span><code>{escape(path)}</code></h3>',
        f"<p><strong>{escape(op['summary'])}</strong></p>",
    ]
    if "description" in op:
        parts.append(f"<p>{escape(op['description'])}</p>")
    if op.get("security") == []:
        parts.append("<p>No authentication.</p>")
    if op.get("parameters"):
        rows = "".join(
            f"<tr><td><code>{escape(p['name'])}</code></td><td>{escape(p['in'])}</td>"
            f"<td>{'yes' if p.get('required') else ''}</td>"
            f"<td>{escape(p.get('description', ''))}</td></tr>"
            for p in op["parameters"]
        )
        parts.append("<h4>Parameters</h4><table><tr><th>Name</th><th>In</th><th>Required</th>"
                     f"<th>Notes</th></tr>{rows}</table>")
    if "requestBody" in op:
        ref = op["requestBody"]["content"]["application/json"]["schema"]["$ref"]
        parts.append(f"<h4>Body: {_type({'$ref': ref})}</h4>")
        parts.append(_fields(doc["components"]["schemas"][_schema_name(ref)]))
    rows = []
    for status, response in op["responses"].items():
        if "$ref" in response:
            response = doc["components"]["responses"][_schema_name(response["$ref"])]
        body = ""
        for content in response.get("content", {}).values():
            body = _type(content["schema"])
        rows.append(f"<tr><td>{escape(status)}</td><td>{escape(response['description'])}</td>"
                    f"<td>{body}</td></tr>")
    parts.append("<h4>Responses</h4><table><tr><th>Status</th><th>Meaning</th><th>Body</th>"
                 f"</tr>{''.join(rows)}</table></section>")
    return "".join(parts)


def render(doc: dict[str, Any]) -> str:
    """The whole reference as one HTML page."""
    info = doc["info"]
    by_tag: dict[str, list[str]] = {tag["name"]: [] for tag in doc["tags"]}
    for path, methods in doc["paths"].items():
        for method, op in methods.items():
            by_tag[op["tags"][0]].append(_operation(method, path, op, doc))
    nav = "".join(f'<a href="#tag-{escape(tag)}">{escape(tag)}</a>' for tag in by_tag)
    sections = "".join(
        f'<h2 id="tag-{escape(tag)}">{escape(tag)}</h2>{"".join(ops)}'
        for tag, ops in by_tag.items()
    )
    schemas = "".join(
        f'<section class="op" id="schema-{escape(name)}"><h3>{escape(name)}</h3>'
        f"{_fields(schema)}</section>"
        for name, schema in doc["components"]["schemas"].items()
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{escape(info['title'])} reference</title><style>{_CSS}</style></head>
<body><h1>{escape(info['title'])}</h1><p>Version {escape(info['version'])} ·
<a href="openapi.json">OpenAPI document</a></p>
<p>{escape(info['description'])}</p>
<h2>Authentication</h2>
<p>Send <code>X-Tenant-Id: your-tenant</code> and either <code>X-API-Key: ip_live_…</code> or
<code>Authorization: Bearer &lt;JWT&gt;</code> with every request under <code>/v1</code>. A
missing or wrong credential is a 401 <code>UNAUTHENTICATED</code>; a role or environment the
credential lacks is a 403 <code>FORBIDDEN</code> naming what is needed (roles: viewer,
operator, developer, admin). Everything is scoped to the tenant: another tenant's ids
answer 404.</p>
<h2>Errors</h2><p>Every error has the same shape:</p><pre>{escape(_ERROR_EXAMPLE)}</pre>
<nav>{nav}<a href="#schemas">Schemas</a></nav>
{sections}
<h2 id="schemas">Schemas</h2>{schemas}
</body></html>"""
