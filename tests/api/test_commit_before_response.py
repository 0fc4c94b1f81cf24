"""A success answer means committed: the request's transaction commits before the response.

FastAPI runs the exit of a ``yield`` dependency after the response has been
sent unless the dependency is function-scoped. viu's request transaction
used to commit there: a client could read "201 Created", publish telemetry
for the device it had just registered, and have it dead-lettered as an
unknown device because the commit had not happened yet (the cause of the
flaky ``test_viu_up_runs_on_embedded_defaults...[amqtt]``: under load the
gap grew past the MQTT round trip). A commit made slow on purpose (a
deferred trigger sleeping at COMMIT) shows the order over real HTTP.
"""

from __future__ import annotations

import httpx
from sqlalchemy import Engine, text

from services.api.app import create_app
from tests.api.live import serve
from tests.proposals.conftest import contract

SLOW_COMMIT = [
    """CREATE FUNCTION test_slow_commit() RETURNS trigger LANGUAGE plpgsql AS
       $$ BEGIN PERFORM pg_sleep(1.5); RETURN NULL; END $$""",
    """CREATE CONSTRAINT TRIGGER test_slow_commit AFTER INSERT ON contracts
       DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_slow_commit()""",
]


def committed(db: Engine, contract_id: str) -> bool:
    with db.connect() as conn:
        row = conn.execute(
            text(
                "SELECT 1 FROM devices d JOIN contracts c USING (contract_id) WHERE c.contract_id = :c"
            ),
            {"c": contract_id},
        ).first()
    return row is not None


def test_a_201_is_sent_only_after_the_commit(settings, db, admin) -> None:  # type: ignore[no-untyped-def]
    with db.begin() as conn:
        for ddl in SLOW_COMMIT:
            conn.execute(text(ddl))
    try:
        with serve(create_app(settings, db)) as base:
            r = httpx.post(
                f"{base}/v1/contracts",
                json=contract(contract_id="SLOW-1", devices=["slow-1"]),
                headers=admin,
                timeout=30,
            )
            assert r.status_code == 201, r.text
            assert committed(db, "SLOW-1"), "the 201 arrived before the commit"
    finally:
        with db.begin() as conn:
            conn.execute(text("DROP TRIGGER test_slow_commit ON contracts"))
            conn.execute(text("DROP FUNCTION test_slow_commit()"))
