from __future__ import annotations

import pytest

from hub.auth import KeyStore, ensure_signing_key
from hub.config import Settings
from hub.db import Database


@pytest.fixture
async def keystore(db: Database, owner_db: Database, settings: Settings) -> KeyStore:
    """A process's key store, loaded as the app role, reloading on every unknown kid."""
    await ensure_signing_key(owner_db)
    store = KeyStore(settings, unknown_kid_reload_seconds=0)
    await store.load(db)
    return store
