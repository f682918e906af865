"""Provider parkings: "leave first, pay later" as WeChat Pay Score runs it. The provider charges a parking fee after
the car left only against a parking entry opened when it came in, and it may refuse to charge an entry (the payer
paused the service, or never enabled it for the plate). So when an auto-pay plate enters a lot, the job
`open_parking` (tasks.py; enqueued by hub/lanes after the entry commits) opens the entry and keeps its id and
state on the lot session; the exit's deduction names that id (opening the entry then, if the job has not run yet:
the provider deduplicates entries by our number, the session id); the provider's `service_state` callbacks keep
the state current; and an exit whose entry cannot be charged is not an auto-pay exit (hub/lanes holds it for
payment).

Provider calls are made outside transactions, like every other in hub/payments."""

from __future__ import annotations

import logging
import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from connectors.payments import ParkingEntryRequest, PlateColor, ProviderUnavailable, ServiceState
from hub.db import Database, Scope
from hub.payments import providers, repository

logger = logging.getLogger(__name__)
OPEN_PARKING_JOB = "open_parking"
# States of an entry the provider will not charge: the exit holds for payment instead.
UNCHARGEABLE = frozenset({ServiceState.PAUSED.value, ServiceState.NOT_ENABLED.value, ServiceState.BLOCKED.value})


def plate_color(plate: str | None) -> PlateColor:
    """Mainland plates: eight characters are new-energy (green), seven the common blue ones."""
    return PlateColor.GREEN if plate and len(plate) == 8 else PlateColor.BLUE


def out_parking_no(session_id: uuid.UUID) -> str:
    return session_id.hex


async def open_parking_now(db: Database, tenant_id: uuid.UUID, session_id: uuid.UUID) -> str | None:
    """The provider's parking entry of an auto-pay lot session, opened once and kept on the session; None when the
    session is unknown, has no plate, or the provider could not be reached (the exit's deduction opens it then)."""
    from hub.payments import service  # the service imports this module

    scope = Scope("connector", tenant_id=tenant_id)
    async with db.transaction(scope) as session:
        stay = await repository.parking_subject(session, tenant_id, session_id)
        if stay is None or stay["plate"] is None:
            return None
        if stay["provider_parking_id"] is not None:
            return str(stay["provider_parking_id"])
        provider_name = providers.default_name()
        url = await service.notify_url(session, tenant_id, provider_name)
    request = ParkingEntryRequest(
        out_parking_no=out_parking_no(session_id),
        plate=stay["plate"],
        plate_color=plate_color(stay["plate"]),
        started_at=stay["entered_at"],
        facility_name=stay["facility_name"][:127],
        notify_url=url,
    )
    try:
        entry = await providers.get(provider_name).open_parking(request)
    except ProviderUnavailable as error:
        logger.warning("parking entry of session %s not opened now (%s); the exit opens it", session_id, error)
        return None
    async with db.transaction(scope) as session:
        await repository.record_provider_parking(session, tenant_id, session_id, entry.parking_id, entry.state.value)
    return entry.parking_id


async def apply_service_state(session: AsyncSession, tenant_id: uuid.UUID, body: Mapping[str, Any]) -> str:
    """A provider's `service_state` callback about a parking entry: its state on the session. The outcome's word
    ('changed', or 'ignored' for a callback about a plate's service as a whole or an entry not known here)."""
    details = body.get("details") or {}
    parking_id, state = details.get("parking_id"), body.get("service_state")
    if not parking_id or state not in {item.value for item in ServiceState}:
        return "ignored"
    changed = await repository.set_provider_parking_state(session, tenant_id, str(parking_id), str(state))
    return "changed" if changed else "ignored"
