"""Connector and device administration tests run through the API as each kind of caller, with the fixtures
of tests/api, and against the services as the app role under row-level security."""

from __future__ import annotations

from tests.api.conftest import app, callers, client  # noqa: F401  (pytest finds fixtures by name)
