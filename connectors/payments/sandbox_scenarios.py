"""The sandbox's outcome words (`sandbox:fail`, `sandbox:timeout`, ...) and what they make it do.

A request chooses them with `sandbox:<word>` tokens in a charge's `payer` or `description`, a deduction's
`plate` or `description`, a refund's `reason`; a test scripts them for one number with
`SandboxProvider.set_outcome(number, *words)`. Words combine (`sandbox:fail sandbox:duplicate`); unknown or
contradictory words are refused, so that a typo fails loudly instead of silently succeeding.

What happens to the order:
- `succeed` (the default): the payment is captured, the refund paid back.
- `fail`: the payment fails for insufficient funds (`INSUFFICIENT_FUNDS`); a refund is declined.
- `pending`: the order stays `accepted` until the test calls `complete(number, succeed=...)`.

What happens to the call (only the first call with that number; a retry gets the order as it stands):
- `timeout`: ProviderUnavailable is raised although the sandbox DID take the order (the crash case).
- `unavailable`: ProviderUnavailable is raised and the sandbox did NOT take the order.

What happens to the callbacks:
- `duplicate`: each is delivered twice with the same event id (the inbox must deduplicate).
- `renotify`: the final one is sent again under a new event id (applying must be idempotent).
- `reorder` (payments only): an older, superseded callback is added (a declined first attempt before the
  success, or the acceptance before the failure), and the order's callbacks are held back, then delivered
  newest first: after the callbacks of the order's first refund (a refund's callback arrives before its
  payment's), or at `drain()`.
- `lost`: none is ever delivered; only a query tells the truth.
- `slow`: they are delivered `slow_seconds` late.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

_TOKEN = re.compile(r"sandbox:([a-z_]+)")
OUTCOMES = ("succeed", "fail", "pending")
CALLS = ("timeout", "unavailable")
DELIVERIES = ("duplicate", "renotify", "reorder", "lost", "slow")
# Words about the plate's auto-pay service, read elsewhere (sandbox._service_state), allowed in plate text.
SERVICE_WORDS = ("paused", "not_enabled")
WORDS = OUTCOMES + CALLS + DELIVERIES


@dataclass(frozen=True, slots=True)
class Scenario:
    outcome: Literal["succeed", "fail", "pending"] = "succeed"
    call: Literal["ok", "timeout", "unavailable"] = "ok"
    duplicate: bool = False
    renotify: bool = False
    reorder: bool = False
    lost: bool = False
    slow: bool = False

    @classmethod
    def from_words(cls, words: Iterable[str]) -> Scenario:
        chosen = set(words) - set(SERVICE_WORDS)
        unknown = sorted(chosen - set(WORDS))
        if unknown:
            raise ValueError(f"unknown sandbox word(s) {', '.join(unknown)}; known: {', '.join(WORDS)}")
        outcomes = [word for word in OUTCOMES if word in chosen]
        calls = [word for word in CALLS if word in chosen]
        if len(outcomes) > 1 or len(calls) > 1:
            raise ValueError(f"contradictory sandbox words: {', '.join(outcomes + calls)}")
        if "lost" in chosen and chosen & {"duplicate", "renotify", "reorder", "slow"}:
            raise ValueError("sandbox word `lost` delivers nothing: it cannot combine with other delivery words")
        return cls(
            outcome=outcomes[0] if outcomes else "succeed",  # type: ignore[arg-type]
            call=calls[0] if calls else "ok",  # type: ignore[arg-type]
            duplicate="duplicate" in chosen,
            renotify="renotify" in chosen,
            reorder="reorder" in chosen,
            lost="lost" in chosen,
            slow="slow" in chosen,
        )


def scenario_words(text: str | None) -> list[str]:
    """The `sandbox:<word>` tokens in a request field (payer, plate, description, reason)."""
    return _TOKEN.findall(text) if text else []
