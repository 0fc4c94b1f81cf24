"""`viu demo` end to end on a small scale: contracts, history, statements, proposals, a token.

The demo goes through the real doors (ingest write path, settlement runs,
issue, the detectors), so what it shows is what the product does.
"""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import Engine

from services.api.tokens import authenticate
from services.config import Settings
from services.demo import DemoResult, run_demo, scenario
from services.ingest import stats
from services.settlement import statements
from services.settlement.proposals import repository as proposals_repo


def small_demo(engine: Engine, settings: Settings, said: list[str]) -> DemoResult:
    """Six months of hourly samples: the same story as the default, four times faster."""
    return run_demo(engine, settings, months=6, scale=0.25, say=said.append)


@pytest.fixture
def demo_settings(settings: Settings, tmp_path: Any) -> Settings:
    return settings.model_copy(update={"data_dir": tmp_path, "bootstrap_token": None})


@pytest.fixture
def demo(db: Engine, demo_settings: Settings) -> tuple[DemoResult, list[str]]:
    said: list[str] = []
    return small_demo(db, demo_settings, said), said


def _rows(engine: Engine, cid: str, period: Any) -> list[Any]:
    with engine.connect() as conn:
        return statements.rows_for(conn, cid, period)


def test_demo_settles_every_month_and_issues_all_but_the_last(
    demo: tuple[DemoResult, list[str]], db: Engine
) -> None:
    result, _ = demo
    assert len(result.contract_ids) == 3 and len(result.periods) == 6
    for cid in result.contract_ids:
        for period in result.periods[:-1]:
            assert [r.status for r in _rows(db, cid, period)] == ["issued"]
        assert [r.status for r in _rows(db, cid, result.periods[-1])] == ["draft"]


def test_demo_history_makes_the_intended_detectors_fire(
    demo: tuple[DemoResult, list[str]], db: Engine
) -> None:
    result, _ = demo
    for planned in scenario(result.periods[0], len(result.periods)):
        with db.connect() as conn:
            kinds = {r.kind for r in proposals_repo.open_for(conn, planned.contract_id)}
            accepted = {
                r.kind for r in proposals_repo.list_for(conn, planned.contract_id, ("accepted",))
            }
        assert set(planned.expected) <= kinds, planned.contract_id
        assert set(planned.accepted) <= accepted, planned.contract_id


def test_demo_tells_the_promise_the_corrective_action_and_its_effect(
    demo: tuple[DemoResult, list[str]], api: Any
) -> None:
    result, said = demo
    auth = {"Authorization": f"Bearer {result.token}"}
    url = "/v1/contracts/DEMO-CRUSH-01"
    chronic = [
        p
        for p in api.get(f"{url}/proposals", headers=auth).json()
        if p["kind"] == "chronic_penalty"
    ]
    assert chronic and all(p["remedy"] == "corrective_action" for p in chronic)
    assert [v["version"] for v in api.get(f"{url}/versions", headers=auth).json()] == [1]
    [action] = api.get(f"{url}/actions", headers=auth).json()
    assert (action["owner"], action["devices"], action["status"]) == (
        "provider",
        ["demo-crusher-02"],
        "done",
    )
    effect = action["effect"]
    assert effect["after"]["value"] > effect["before"]["value"] + 0.05  # the reline worked
    review = api.get(f"{url}/reviews/{result.periods[-1].quarter}", headers=auth).json()
    assert [a["id"] for a in review["actions"]] == [action["id"]]
    [decided, *_] = review["decided_proposals"]
    assert decided["changed_since"]["action"]["effect"] == effect
    promise = api.get(f"{url}/value", headers=auth).json()["promise"]
    assert any(f["status"] == "missed" for p in promise["periods"] for f in p["figures"].values())
    assert any("review meeting" in line for line in said)


def test_demo_prints_a_working_admin_token_and_the_urls_to_explore(
    demo: tuple[DemoResult, list[str]], db: Engine, api: Any
) -> None:
    result, said = demo
    with db.connect() as conn:
        who = authenticate(conn, result.token)
    assert who is not None and who.role == "admin"
    assert f"  export TOKEN={result.token}" in said
    auth = {"Authorization": f"Bearer {result.token}"}
    cid, last = result.contract_ids[0], result.periods[-1]
    quarter = last.quarter
    wanted = [
        f"/v1/contracts/{cid}/statements/{last}",
        f"/v1/contracts/{cid}/proposals",
        f"/v1/contracts/{cid}/reviews/{quarter}?format=html",
    ]
    for path in wanted:
        assert any(line.strip().endswith(path) for line in said), path
        assert api.get(path, headers=auth).status_code == 200, path
    proposals = api.get(f"/v1/contracts/{cid}/proposals", headers=auth).json()
    assert {p["kind"] for p in proposals} >= {"chronic_penalty", "unreachable_bonus", "data_gaps"}


def test_running_the_demo_twice_reuses_everything(
    demo: tuple[DemoResult, list[str]], db: Engine, demo_settings: Settings
) -> None:
    first, _ = demo
    with db.connect() as conn:
        counters = stats.totals(conn)
    ids = {
        (c, p): [r.id for r in _rows(db, c, p)] for c in first.contract_ids for p in first.periods
    }
    said: list[str] = []
    second = small_demo(db, demo_settings, said)
    assert second.token == first.token
    assert second.proposals == first.proposals
    assert {(c, p): [r.id for r in _rows(db, c, p)] for c, p in ids} == ids
    with db.connect() as conn:
        assert stats.totals(conn) == counters  # no sample written again
    assert "history already complete" in said


def test_demo_people_sign_in_and_open_the_printed_pages(
    demo: tuple[DemoResult, list[str]], api: Any
) -> None:
    from tests.pages.conftest import sign_in

    _, said = demo
    logins = [line.split(": ", 1)[1].split(" / ") for line in said if "example / " in line]
    assert len(logins) == 3  # provider, customer, finance
    pages = [
        line.strip().split("8000", 1)[1]
        for line in said
        if "/contracts" in line and "/v1/" not in line
    ]
    pages += [line.strip().split("8000", 1)[1] for line in said if "/statements?period=" in line]
    pages += [line.strip().split("8000", 1)[1] for line in said if line.endswith("8000/reviews")]
    assert len(pages) == 8  # and among them the review of the last quarter
    assert any("/reviews/" in path for path in pages)
    for email, password in logins:
        api.cookies.clear()
        assert sign_in(api, email, password).status_code == 303, email
        for path in pages:
            assert api.get(path).status_code == 200, (email, path)
