import pytest
from services.demo import run_demo, scenario
from services.settlement.proposals import repository as proposals_repo
from services.settlement import actions
from tests.test_demo import demo_settings  # noqa


@pytest.mark.parametrize(
    "end", ["2024-02", "2024-07", "2025-01", "2025-06", "2025-11", "2026-03", "2026-08", "2026-11"]
)
def test_end(db, demo_settings, end):
    said = []
    r = run_demo(db, demo_settings, months=6, end_period=end, scale=0.25, say=said.append)
    problems = []
    for planned in scenario(r.periods[0], 6):
        with db.connect() as conn:
            kinds = {x.kind for x in proposals_repo.open_for(conn, planned.contract_id)}
            acc = {
                x.kind for x in proposals_repo.list_for(conn, planned.contract_id, ("accepted",))
            }
            acts = actions.listing(conn, planned.contract_id)
            eff = [actions.effect(conn, a) for a in acts]
        if not set(planned.expected) <= kinds:
            problems.append((planned.contract_id, "open", kinds))
        if not set(planned.accepted) <= acc:
            problems.append((planned.contract_id, "acc", acc))
        if planned.contract_id == "DEMO-CRUSH-01":
            ok = (
                acts
                and eff[0]
                and eff[0]["after"]["value"]
                and eff[0]["after"]["value"] > eff[0]["before"]["value"]
            )
            if not ok:
                problems.append(("crush effect", eff))
    print(end, problems)
    assert not problems
