"""The project's own docs are self-contained (issue 15, item 6).

Every relative link in the README and docs/ resolves to a file of the
repository (and a ``#fragment`` to a heading of it), nothing points outside it
(``../shared``), and the docs name what the code registers: every proposal
kind and every penalty form.
"""

from __future__ import annotations

import re
from pathlib import Path

from schemas.penalties import FORM_NAMES
from services.settlement.penalties import FORMS
from services.settlement.proposals.registry import KIND_NAMES
from tests.conftest import REPO

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)(?:\s+\"[^\"]*\")?\)")
HEADING = re.compile(r"^#{1,6}\s+(.*)$", re.M)


def documents() -> list[Path]:
    return [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]


def links(text: str) -> list[str]:
    """Relative link targets of a markdown text (web, mail and in-page links left out)."""
    return [
        t for t in LINK.findall(text) if not re.match(r"^(https?:|mailto:|#)", t, re.IGNORECASE)
    ]


def slug(heading: str) -> str:
    """GitHub's anchor of a heading."""
    text = re.sub(r"[`*_]", "", heading.strip().lower())
    return re.sub(r"[^\w\- ]", "", text).replace(" ", "-")


def broken(doc: Path, root: Path = REPO) -> list[str]:
    out = []
    for target in links(doc.read_text()):
        path, _, fragment = target.partition("#")
        resolved = (doc.parent / path).resolve()
        if not resolved.is_relative_to(root.resolve()):
            out.append(f"{doc.name}: {target} leaves the repository")
        elif not resolved.exists():
            out.append(f"{doc.name}: {target} does not exist")
        elif fragment and resolved.suffix == ".md":
            anchors = {slug(h) for h in HEADING.findall(resolved.read_text())}
            if fragment not in anchors:
                out.append(f"{doc.name}: {target}: no heading #{fragment}")
    return out


def test_every_relative_link_resolves_inside_the_repository() -> None:
    problems = [p for doc in documents() for p in broken(doc)]
    assert not problems, "\n".join(problems)


def test_the_link_check_can_fail(tmp_path: Path) -> None:
    doc = tmp_path / "x.md"
    doc.write_text(
        "# Here\n[a](missing.md) [b](x.md#nowhere) [c](https://example.com) [d](#here)\n"
        "[e](x.md#here) [f](../outside.md)\n"
    )
    assert [p.split(": ")[1] for p in broken(doc, tmp_path)] == [
        "missing.md does not exist",
        "x.md#nowhere",
        "../outside.md leaves the repository",
    ]
    assert links("see [spec](../shared/spec/DOMAIN.md)") == ["../shared/spec/DOMAIN.md"]


def test_nothing_points_outside_the_repository() -> None:
    outside = [
        f"{doc.relative_to(REPO)}:{n}"
        for doc in documents()
        for n, line in enumerate(doc.read_text().splitlines(), 1)
        if "../shared" in line
    ]
    assert not outside, f"links or paths outside the repository: {outside}"


def test_the_readme_links_the_domain_docs() -> None:
    targets = set(links((REPO / "README.md").read_text()))
    assert {"docs/contracts.md", "docs/settlement.md", "docs/proposals.md"} <= targets


def test_every_proposal_kind_is_documented() -> None:
    text = (REPO / "docs" / "proposals.md").read_text()
    missing = [kind for kind in KIND_NAMES if f"`{kind}`" not in text]
    assert KIND_NAMES and not missing, f"docs/proposals.md does not describe {missing}"


def test_every_penalty_form_is_documented() -> None:
    assert set(FORMS) == set(FORM_NAMES)
    for name in ("contracts.md", "settlement.md"):
        text = (REPO / "docs" / name).read_text()
        missing = [form for form in FORM_NAMES if f"`{form}`" not in text]
        assert not missing, f"docs/{name} does not name the penalty forms {missing}"
