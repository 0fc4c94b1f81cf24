"""HTTP-facing helpers of ingest: exact JSON responses and query parsing.

Kept beside the write path (not in the router) so that every door renders
samples and dead letters the same way.
"""

from __future__ import annotations

import base64
from datetime import datetime
from typing import Any

from fastapi.responses import JSONResponse

from schemas.db import samples
from schemas.telemetry import parse_ts
from services.errors import Invalid
from services.ingest import jsonx


class ExactJSON(JSONResponse):
    """JSON whose numbers are the stored decimals, never rounded through float."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return jsonx.dumps(content).encode()


def query_ts(value: str | None, name: str) -> datetime | None:
    """An RFC 3339 (or epoch seconds) query parameter; a '+' decoded as ' ' is forgiven."""
    if value is None or value == "":
        return None
    v = value.strip()
    if len(v) > 19 and v[-6] == " ":
        v = v[:-6] + "+" + v[-5:]
    try:
        return parse_ts(int(v) if v.isdigit() else v)
    except ValueError as exc:  # out of range, or more digits than int() takes
        raise Invalid(f"{name}: {exc}", field=name) from None


SAMPLE_FIELDS = tuple(c.name for c in samples.columns if c.name != "device_id")


def sample_out(row: dict[str, Any]) -> dict[str, Any]:
    """A stored sample as the API shows it (its device is in the URL)."""
    return {k: row[k] for k in SAMPLE_FIELDS}


def dead_letter_out(row: dict[str, Any]) -> dict[str, Any]:
    out = {k: v for k, v in row.items() if k != "payload"}
    raw = bytes(row["payload"])
    try:
        out["payload"] = raw.decode("utf-8")
        out["payload_encoding"] = "utf-8"
    except UnicodeDecodeError:
        out["payload"] = base64.b64encode(raw).decode()
        out["payload_encoding"] = "base64"
    return out
