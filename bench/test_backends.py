"""Pure helpers of bench/backends.py (run: .venv/bin/pytest -q bench/test_backends.py)."""

from __future__ import annotations

import pytest
from backends import (
    Figure,
    comparison_rows,
    markdown_table,
    parse_backends,
    ratio,
    server_of,
    strip_options,
)


def test_parse_backends_keeps_order_and_refuses_unknown_or_repeated_names() -> None:
    assert parse_backends("plain, TimescaleDB") == ["plain", "timescaledb"]
    assert parse_backends("timescaledb,plain") == ["timescaledb", "plain"]
    for bad in ("", "plain,mysql", "plain,plain"):
        with pytest.raises(ValueError):
            parse_backends(bad)


def test_strip_options_removes_both_forms_and_keeps_the_rest() -> None:
    argv = ["--messages", "10", "--backends", "plain", "--server=x", "--json", "f", "--keep"]
    options = {"--backends": True, "--server": True, "--json": True}
    assert strip_options(argv, options) == ["--messages", "10", "--keep"]
    assert strip_options(["--keep"], {"--keep": False}) == []


def test_server_of_drops_the_database_and_query() -> None:
    url = "postgresql://postgres@127.0.0.1:55432"
    assert server_of(url + "/postgres") == url
    assert server_of(url + "/") == url
    assert server_of(url) == url
    assert server_of(url + "/db?sslmode=disable") == url


def test_ratio_needs_a_positive_reference() -> None:
    assert ratio(50.0, 200.0) == 0.25
    assert ratio(None, 200.0) is None
    assert ratio(50.0, None) is None
    assert ratio(50.0, 0.0) is None


def test_comparison_rows_align_measures_across_backends() -> None:
    figures = {
        "plain": [Figure("single", 30_000, 120_000), Figure("p99", None, None, "80.0 ms")],
        "timescaledb": [Figure("single", 20_000, 100_000), Figure("hyper", 90_000, 100_000)],
    }
    rows = comparison_rows(figures, ["plain", "timescaledb"])
    assert rows[0] == [
        "measure",
        "plain",
        "its COPY ref",
        "ratio",
        "timescaledb",
        "its COPY ref",
        "ratio",
    ]
    assert rows[1] == ["single", "30,000", "120,000", "0.250", "20,000", "100,000", "0.200"]
    assert rows[2] == ["p99", "80.0 ms", "-", "-", "(not measured)", "-", "-"]
    assert rows[3] == ["hyper", "(not measured)", "-", "-", "90,000", "100,000", "0.900"]
    table = markdown_table(rows).splitlines()
    assert table[1] == "|---|---|---|---|---|---|---|"
    assert table[2] == "| single | 30,000 | 120,000 | 0.250 | 20,000 | 100,000 | 0.200 |"
