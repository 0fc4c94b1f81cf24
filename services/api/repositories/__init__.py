"""Queries the HTTP routes need that no domain module owns; route modules hold no SQL."""
