"""Schemathesis hooks for scripts/schemathesis: the `consent_fields` check.

Every row a partner receives must hold only fields its consent in force releases. The check
takes both sides of that from what the server itself publishes, never from a list kept here:

- what the token is granted: `GET /api/v1/TokenDetails` with the very `Authorization` header
  the checked request carried (`Scopes`, the scopes granted now);
- what each field needs: the OpenAPI document under test. A read operation's 200 answer
  declares each result set as an array of `#/components/schemas/ResultSet.<Set>`, and each
  property of that schema is described `Released by: <scope expression>`, the catalogue's
  expression (`Student / StudentLite + Contact`: every `+` clause must hold, a clause holds
  when any of its `/` scopes is granted; `*` holds for any consent).

It then flags, in any 2xx JSON answer of an operation that declares result sets, every key of
every row that the granted scopes do not release, every key the result set's schema does not
declare (nothing says who may see it), and every answered array the operation does not declare
(its rows could not be checked). `<Set>_deleted` rows (changesets) are checked against
`<Set>`; `meta`, `__pagination__`, `__DbStatus__` and `__changedRows__` carry no school data.
A schema property without a readable `Released by:` description is an error of the check
itself, so a change of wording fails loudly instead of passing silently.
"""

from __future__ import annotations

import atexit
import re
import sys
import threading
from urllib.parse import urlsplit

import requests
import schemathesis

ENVELOPE = frozenset({"meta", "__pagination__", "__DbStatus__", "__changedRows__"})
RELEASED_BY = re.compile(r"^Released by: (?P<expr>.+)$")
REF_PREFIX = "#/components/schemas/"
# How many offending fields one failure names (the rest are counted).
SHOWN = 12

_lock = threading.Lock()
_granted: dict[tuple[str, str], frozenset[str]] = {}
_field_scopes: dict[int, dict[str, dict[str, list[frozenset[str]]]]] = {}
# What the check saw, said at exit: answers and rows checked, and the operations they came from.
_seen = {"answers": 0, "rows": 0, "operations": set()}


@atexit.register
def _summary() -> None:
    if _seen["answers"]:
        print(
            f"consent_fields: checked {_seen['rows']} rows in {_seen['answers']} answers "
            f"of {len(_seen['operations'])} operations",
            file=sys.stderr,
        )


def parse_field_scope(expr: str) -> list[frozenset[str]]:
    """`A / B + C` as its clauses: [{A, B}, {C}]; `*` as no clause at all."""
    expr = expr.strip()
    if expr == "*":
        return []
    clauses = []
    for clause in expr.split("+"):
        names = frozenset(name.strip() for name in clause.split("/"))
        if not names or not all(name.isalnum() for name in names):
            raise ValueError(f"unreadable scope expression {expr!r}")
        clauses.append(names)
    return clauses


def released(clauses: list[frozenset[str]], granted: frozenset[str]) -> bool:
    return all(clause & granted for clause in clauses)


def field_scopes(raw_schema: dict) -> dict[str, dict[str, list[frozenset[str]]]]:
    """Every `ResultSet.<Set>` component: field name -> the clauses that release it."""
    key = id(raw_schema)
    with _lock:
        cached = _field_scopes.get(key)
    if cached is not None:
        return cached
    sets: dict[str, dict[str, list[frozenset[str]]]] = {}
    for name, schema in raw_schema.get("components", {}).get("schemas", {}).items():
        if not name.startswith("ResultSet."):
            continue
        fields = {}
        for field, spec in schema.get("properties", {}).items():
            match = RELEASED_BY.match(spec.get("description", ""))
            if match is None:
                raise RuntimeError(
                    f"consent_fields: {name}.{field} has no `Released by:` description; "
                    "the check cannot tell which scope releases it"
                )
            fields[field] = parse_field_scope(match.group("expr"))
        sets[REF_PREFIX + name] = fields
    if not sets:
        raise RuntimeError("consent_fields: the OpenAPI document declares no ResultSet schemas")
    with _lock:
        _field_scopes[key] = sets
    return sets


def granted_scopes(url: str, authorization: str) -> frozenset[str]:
    """The scopes the token is granted now, as `GET /api/v1/TokenDetails` answers them."""
    parts = urlsplit(url)
    base = f"{parts.scheme}://{parts.netloc}"
    key = (base, authorization)
    with _lock:
        cached = _granted.get(key)
    if cached is not None:
        return cached
    answer = requests.get(
        f"{base}/api/v1/TokenDetails", headers={"Authorization": authorization}, timeout=30
    )
    if answer.status_code != 200:
        raise RuntimeError(
            f"consent_fields: TokenDetails answered {answer.status_code}: {answer.text[:300]}"
        )
    scopes = frozenset(answer.json()["Scopes"])
    with _lock:
        _granted[key] = scopes
    return scopes


def declared_sets(case) -> dict[str, str]:
    """The operation's answered result sets: wire name -> `#/components/schemas/ResultSet.X`."""
    operation = case.operation
    raw = operation.schema.raw_schema
    definition = raw["paths"][operation.path][operation.method.lower()]
    schema = (
        definition.get("responses", {})
        .get("200", {})
        .get("content", {})
        .get("application/json", {})
        .get("schema", {})
    )
    sets = {}
    for name, prop in schema.get("properties", {}).items():
        ref = prop.get("items", {}).get("$ref", "") if isinstance(prop, dict) else ""
        if ref.startswith(REF_PREFIX + "ResultSet."):
            sets[name] = ref
    return sets


@schemathesis.check
def consent_fields(ctx, response, case):
    """No answered row holds a field the token's consent in force does not release."""
    if not 200 <= response.status_code < 300:
        return None
    sets = declared_sets(case)
    if not sets:
        return None  # not a read of school data (info, token, write-back)
    if "json" not in response.headers.get("content-type", [""])[0]:
        return None
    body = response.json()
    if not isinstance(body, dict):
        raise AssertionError(f"the answer is a JSON {type(body).__name__}, not the XoD envelope")
    authorization = response.request.headers.get("Authorization", "")
    granted = granted_scopes(response.request.url, authorization)
    schemas = field_scopes(case.operation.schema.raw_schema)
    problems: list[str] = []
    for key, rows in body.items():
        if key in ENVELOPE:
            continue
        set_name = key[: -len("_deleted")] if key.endswith("_deleted") else key
        ref = sets.get(set_name)
        if ref is None:
            problems.append(f"`{key}`: not a result set this operation declares")
            continue
        fields = schemas.get(ref)
        if fields is None:
            raise RuntimeError(f"consent_fields: {ref} is not in the document")
        if not isinstance(rows, list):
            problems.append(f"`{key}`: not an array of rows")
            continue
        seen: set[str] = set()
        for index, row in enumerate(rows):
            if not isinstance(row, dict):
                problems.append(f"`{key}[{index}]`: not an object")
                continue
            for field in row:
                if field in seen:
                    continue
                clauses = fields.get(field)
                if clauses is None:
                    seen.add(field)
                    problems.append(f"`{key}[{index}].{field}`: not a field of {ref[len(REF_PREFIX):]}")
                elif not released(clauses, granted):
                    seen.add(field)
                    needs = " + ".join(" / ".join(sorted(c)) for c in clauses)
                    problems.append(f"`{key}[{index}].{field}`: needs {needs}, not granted")
    rows_checked = sum(
        len(rows) for key, rows in body.items() if key not in ENVELOPE and isinstance(rows, list)
    )
    with _lock:
        _seen["answers"] += 1
        _seen["rows"] += rows_checked
        if rows_checked:
            _seen["operations"].add(case.operation.label)
    if problems:
        shown = "\n".join(problems[:SHOWN])
        more = f"\n... and {len(problems) - SHOWN} more" if len(problems) > SHOWN else ""
        raise AssertionError(
            f"the answer holds fields outside the consent in force "
            f"(granted: {', '.join(sorted(granted)) or 'nothing'}):\n{shown}{more}"
        )
    return None
