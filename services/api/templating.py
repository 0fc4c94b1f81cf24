"""Jinja2 templates (autoescaped) with viu's number filters, for pages and printouts."""

from __future__ import annotations

from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.api import formatting

HERE = Path(__file__).resolve().parent
TEMPLATES, STATIC = HERE / "templates", HERE / "static"


@cache
def environment() -> Environment:
    """Static files are on the search path too, so a printout can inline the stylesheet."""
    env = Environment(
        loader=FileSystemLoader([TEMPLATES, STATIC]),
        autoescape=True,
        undefined=StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters.update(formatting.FILTERS)
    return env


def html(name: str, **context: Any) -> str:
    """A template rendered to text."""
    return environment().get_template(name).render(**context)
