"""History tests reuse the inbound pipeline's fixtures: events go in through the real endpoint and worker."""

from tests.ingest.conftest import (  # noqa: F401 (fixtures)
    add_connector,
    add_sensor,
    app,
    callers,
    client,
    run_worker,
    site,
)
