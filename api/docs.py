"""``docs/api.md``, generated from the service's OpenAPI document (``python -m api.docs``).

A test regenerates it and compares, so the reference never drifts from the code.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from typing import Any

__all__ = ["render"]

_INTRO = """# suyuan HTTP API

Generated from the OpenAPI document (`GET /openapi.json`, interactive at `/docs`)
by `python -m api.docs > docs/api.md`; do not edit by hand.

- **Authentication**: `Authorization: Bearer <API key>` (or `X-API-Key`). Keys are
  issued by administrators (`POST /v1/actors`, `POST /v1/actors/{id}/api-keys`;
  the first one with `scripts/suyuan admin create-key`) and shown once.
- **Errors** are RFC 9457 `application/problem+json` with a stable `type`
  (`/problems/<kind>`), a `title`, the `status`, a `detail` in plain words and,
  for refused events, the custody `rule`.
- **Lists** are cursor-paginated: `{"data": [...], "next_cursor": "..."}`; pass
  `cursor=` to get the next page.
- **Writes** of the operations, handovers and bulk routes take an
  `Idempotency-Key` header: a retry returns the original receipt and appends
  nothing.

## Example

```sh
KEY=sy_...                                     # an organisation's API key
curl -s -H "Authorization: Bearer $KEY" -H 'Content-Type: application/json' \\
     -d '[{"code": "001PEAB0000001G1C0000001", "mass_kg": 410}]' \\
     http://127.0.0.1:8000/v1/items            # commission a pack (custodial key)
curl -s http://127.0.0.1:8000/p/001PEAB0000001G1C0000001     # its public passport (JSON)
curl -s http://127.0.0.1:8000/v1/ledger/checkpoint           # the signed checkpoint
```
"""


def _ref_name(schema: Mapping[str, Any]) -> str:
    if "$ref" in schema:
        return str(schema["$ref"]).rsplit("/", 1)[-1]
    if schema.get("type") == "array" and isinstance(schema.get("items"), Mapping):
        return f"list of {_ref_name(schema['items'])}"
    return str(schema.get("type", "object"))


def _parameters(op: Mapping[str, Any]) -> list[str]:
    rows = []
    for p in op.get("parameters", []):
        schema = p.get("schema", {})
        kind = schema.get("type") or "/".join(
            str(s.get("type", "?")) for s in schema.get("anyOf", []) if isinstance(s, Mapping)
        )
        required = "required" if p.get("required") else "optional"
        description = (p.get("description") or "").replace("\n", " ")
        rows.append(f"| `{p['name']}` | {p['in']} | {kind} | {required} | {description} |")
    if not rows:
        return []
    return ["| parameter | in | type | | description |", "|---|---|---|---|---|", *rows, ""]


def _body(op: Mapping[str, Any]) -> list[str]:
    content = op.get("requestBody", {}).get("content", {})
    if not content:
        return []
    kinds = ", ".join(
        f"`{media}` ({_ref_name(spec.get('schema', {}))})" for media, spec in content.items()
    )
    return [f"Request body: {kinds}.", ""]


def _responses(op: Mapping[str, Any]) -> list[str]:
    codes = []
    for code, spec in sorted(op.get("responses", {}).items()):
        media = ", ".join(spec.get("content", {}) or ["—"])
        codes.append(f"`{code}` {spec.get('description', '')} ({media})")
    return [f"Responses: {'; '.join(codes)}.", ""] if codes else []


def render(openapi: Mapping[str, Any]) -> str:
    """The Markdown reference for an OpenAPI document."""
    out = [_INTRO]
    by_tag: dict[str, list[tuple[str, str, Mapping[str, Any]]]] = {}
    for path, item in sorted(openapi["paths"].items()):
        for method, op in item.items():
            tag = (op.get("tags") or ["other"])[0]
            by_tag.setdefault(tag, []).append((method.upper(), path, op))
    for tag in sorted(by_tag):
        out.append(f"## {tag}\n")
        for method, path, op in by_tag[tag]:
            out.append(f"### `{method} {path}`\n")
            summary = op.get("summary") or ""
            description = (op.get("description") or "").strip()
            if summary:
                out.append(summary + "\n")
            if description and description != summary:
                out.append(description + "\n")
            out += _parameters(op) + _body(op) + _responses(op)
    return "\n".join(out).rstrip() + "\n"


def main() -> int:
    from api.app import create_app

    sys.stdout.write(render(json.loads(json.dumps(create_app().openapi()))))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
