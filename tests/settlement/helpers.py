"""Shared steps for settlement tests: drive viu through its HTTP API."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

SCENARIOS = Path(__file__).resolve().parents[3] / "shared" / "scenarios"


def scenarios() -> list[Path]:
    return sorted(SCENARIOS.glob("*.json")) if SCENARIOS.is_dir() else []


def load(path: Path) -> dict[str, Any]:
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def ok(r: Any, *codes: int) -> Any:
    assert r.status_code in (codes or (200, 201)), (r.status_code, r.text[:2000])
    return r.json()


def post_samples(api: Any, headers: dict[str, str], device: str, samples: list[Any]) -> None:
    for i in range(0, len(samples), 5000):
        ok(
            api.post(
                f"/v1/telemetry/{device}", json={"samples": samples[i : i + 5000]}, headers=headers
            )
        )


def statement(
    api: Any, headers: dict[str, str], contract_id: str, period: str, seq: int = 0
) -> Any:
    return ok(
        api.get(f"/v1/contracts/{contract_id}/statements/{period}?seq={seq}", headers=headers)
    )


def run(api: Any, headers: dict[str, str], contract_id: str, period: str) -> Any:
    return ok(
        api.post(
            "/v1/settlements/run",
            json={"period": period, "contract_id": contract_id},
            headers=headers,
        )
    )
