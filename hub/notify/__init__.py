"""Notifications: what happened at a lane reaches the driver (live, and in their inbox) and the operator's
outbound webhooks (Standard Webhooks signed, retried with backoff, disabled after repeated failure).

Callers (lane decisions, the exception queue) use one function, in their own transaction:

    from hub.notify import Notification, notify

    await notify(session, Notification(
        tenant_id=lane.tenant_id, type="session.entered", idempotency_key=f"entered:{session_id}",
        occurred_at=read_at, subject_ids={"session_id": session_id, "facility_id": facility_id, "lane_id": lane_id},
        payload={"plate": plate}, driver_id=driver_user_id_or_none,
    ))

Nothing is sent before that transaction commits. A transaction without a Session (hub.db.driver_transaction, as
the lanes' gate requests use) writes with `service.record_on_connection(conn, event)` and, once committed, sends
with `service.hand_over(recorded)`.
"""

from hub.notify.rules import EVENT_TYPES, Notification
from hub.notify.service import NotifyResult, notify

__all__ = ["EVENT_TYPES", "Notification", "NotifyResult", "notify"]
