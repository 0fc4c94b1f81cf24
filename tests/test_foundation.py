"""The skeleton: configuration, migrations, auth and problem+json."""

from __future__ import annotations

import subprocess
import sys

import pytest
from sqlalchemy import Engine, text

from schemas.timeseries import TIMESCALE
from services.config import ConfigError, load_settings


def test_wrong_setting_fails_fast_naming_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIU_API_PORT", "eighty")
    with pytest.raises(ConfigError, match="VIU_API_PORT"):
        load_settings()


def test_non_postgres_database_url_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("VIU_DATABASE_URL", "sqlite:///x.db")
    with pytest.raises(ConfigError, match="VIU_DATABASE_URL"):
        load_settings()


def test_cli_reports_config_error_with_exit_code_2() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "db", "upgrade"],
        env={"VIU_MQTT_URL": "http://nope", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 2
    assert "VIU_MQTT_URL" in proc.stderr


def test_help_does_not_touch_the_database() -> None:
    proc = subprocess.run(
        [sys.executable, "-m", "services.cli", "--help"],
        env={"VIU_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert proc.returncode == 0
    assert "token" in proc.stdout


def test_samples_are_range_partitioned_without_timescale(db: Engine, backend: str) -> None:
    if backend == TIMESCALE:
        pytest.skip("samples are a hypertable here (tests/test_storage.py checks it)")
    with db.connect() as conn:
        strategy = conn.execute(
            text("SELECT partstrat FROM pg_partitioned_table WHERE partrelid = 'samples'::regclass")
        ).scalar()
        parts = conn.execute(
            text("SELECT count(*) FROM pg_inherits WHERE inhparent = 'samples'::regclass")
        ).scalar()
    assert strategy == "r"
    assert parts is not None and parts >= 4


def test_contract_versions_refuse_update_in_the_database(db: Engine) -> None:
    with db.begin() as conn:
        conn.execute(
            text("INSERT INTO contracts (contract_id, provider, customer) VALUES ('C', 'P', 'K')")
        )
        conn.execute(
            text(
                "INSERT INTO contract_versions (contract_id, version, effective_from, body) "
                "VALUES ('C', 1, '2026-01', '{}')"
            )
        )
    with pytest.raises(Exception, match="immutable"), db.begin() as conn:
        conn.execute(text("UPDATE contract_versions SET body = '{\"x\": 1}'"))
    with pytest.raises(Exception, match="immutable"), db.begin() as conn:
        conn.execute(text("DELETE FROM contract_versions"))


def test_healthz_needs_no_token(api) -> None:  # type: ignore[no-untyped-def]
    assert api.get("/healthz").json() == {"status": "ok"}


def test_readyz_reports_database(api) -> None:  # type: ignore[no-untyped-def]
    body = api.get("/readyz").json()
    assert body["checks"]["database"] is True


def test_v1_without_token_is_401_problem(api) -> None:  # type: ignore[no-untyped-def]
    r = api.get("/v1/tokens")
    assert r.status_code == 401
    assert r.headers["content-type"] == "application/problem+json"
    assert r.json()["status"] == 401


def test_revoked_token_is_refused(api, admin, make_token) -> None:  # type: ignore[no-untyped-def]
    other = make_token("auditor")
    listed = api.get("/v1/tokens", headers=admin).json()
    auditor_id = next(t["id"] for t in listed if t["role"] == "auditor")
    assert api.get("/v1/tokens", headers={"Authorization": f"Bearer {other}"}).status_code == 403
    assert api.delete(f"/v1/tokens/{auditor_id}", headers=admin).status_code == 204
    assert api.get("/v1/tokens", headers={"Authorization": f"Bearer {other}"}).status_code == 401


def test_tokens_are_stored_hashed(api, admin, db) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/tokens", json={"role": "customer", "party": "MineCo"}, headers=admin)
    assert r.status_code == 201
    plain = r.json()["token"]
    with db.connect() as conn:
        stored = conn.execute(text("SELECT token_hash FROM api_tokens")).scalars().all()
    assert plain not in stored


def test_customer_token_needs_a_party(api, admin) -> None:  # type: ignore[no-untyped-def]
    r = api.post("/v1/tokens", json={"role": "customer"}, headers=admin)
    assert r.status_code == 422
    assert r.json()["field"] == "party"


def test_oversized_body_is_413_problem(api, admin, settings) -> None:  # type: ignore[no-untyped-def]
    big = b"x" * (settings.max_body_bytes + 1)
    r = api.post(
        "/v1/contracts", content=big, headers={**admin, "Content-Type": "application/json"}
    )
    assert r.status_code == 413
    assert r.headers["content-type"] == "application/problem+json"


def test_metrics_are_exposed_for_prometheus(api, admin) -> None:  # type: ignore[no-untyped-def]
    api.get("/v1/tokens", headers=admin)
    text = api.get("/metrics/").text
    assert "viu_api_request_seconds_count" in text


def test_request_id_is_echoed_or_made(api) -> None:  # type: ignore[no-untyped-def]
    assert (
        api.get("/healthz", headers={"X-Request-ID": "abc-123"}).headers["x-request-id"]
        == "abc-123"
    )
    assert len(api.get("/healthz").headers["x-request-id"]) == 32


def test_json_log_lines_carry_the_request_id() -> None:
    import json
    import logging

    from services.logs import JsonFormatter, request_id

    token = request_id.set("req-7")
    try:
        record = logging.LogRecord("viu", logging.INFO, __file__, 1, "settled %s", ("C-1",), None)
        line = json.loads(JsonFormatter().format(record))
    finally:
        request_id.reset(token)
    assert line["message"] == "settled C-1" and line["request_id"] == "req-7"
    assert line["level"] == "INFO" and line["ts"].endswith("+00:00")


def test_cli_errors_are_one_clear_line_and_a_non_zero_exit() -> None:
    env = {"VIU_DATABASE_URL": "postgresql://nobody@127.0.0.1:1/none", "PATH": "/usr/bin:/bin"}
    cases = [
        (["settle", "--period", "2026-13"], 2, "invalid period '2026-13'"),
        (["simulate", "--backfill", "--from", "2026-13", "--to", "2026-10"], 1, "--from '2026-13'"),
        (["db", "upgrade"], 1, "cannot reach the database"),
    ]
    for argv, code, message in cases:
        proc = subprocess.run(
            [sys.executable, "-m", "services.cli", *argv],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert proc.returncode == code, (argv, proc.stderr)
        assert message in proc.stderr and "Traceback" not in proc.stderr, proc.stderr
