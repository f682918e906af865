"""Typed errors of the ledger. Each names the failing transfer of a batch (its index and id) and subclasses the hub's
generic error types, so GraphQL (`extensions.code`) and HTTP (4xx JSON) report them without knowing the ledger.
A linked batch that fails writes nothing."""

from __future__ import annotations

import uuid
from typing import Any

from hub.errors import Conflict, DomainError, InvalidInput, NotFound
from hub.ledger import rules


class LedgerError(DomainError):
    """A transfer the engine refused. `result` is the engine's code (the error's `code` in lower case)."""

    def __init__(
        self,
        message: str,
        *,
        result: str,
        index: int | None = None,
        transfer_id: uuid.UUID | None = None,
        detail: str | None = None,
        **extra: Any,
    ) -> None:
        details: dict[str, Any] = dict(extra)
        if index is not None:
            details["index"] = index
        if transfer_id is not None:
            details["transfer_id"] = str(transfer_id)
        if detail is not None:
            details["detail"] = detail
        super().__init__(message, code=result.upper(), **details)
        self.result = result
        self.index = index
        self.transfer_id = transfer_id
        self.detail = detail


class TransferConflict(LedgerError, Conflict):
    """The transfer's id was used before by a transfer that differs (`detail` names the first field)."""


class InsufficientBalance(LedgerError, Conflict):
    """A bounded account would go negative (`detail`: the debit or the credit account)."""


class AccountNotFound(LedgerError, NotFound):
    """A transfer names an account that was never created (see `service.ensure_accounts`)."""


class PendingNotFound(LedgerError, NotFound):
    """A post or void names no pending transfer."""


class PendingAlreadyResolved(LedgerError, Conflict):
    """The pending transfer was already posted (PENDING_ALREADY_POSTED) or voided (PENDING_ALREADY_VOIDED)."""


class PostExceedsPending(LedgerError, InvalidInput):
    """A post asks for more than its pending transfer reserved."""


class PendingExpired(LedgerError, Conflict):
    """The pending transfer expired: it can be voided but no longer posted."""


class InvalidTransfer(LedgerError, InvalidInput):
    """The transfer is malformed or does not fit its accounts or pending (`detail` says how)."""


class AccountConflict(Conflict):
    """An account id already names an account with other attributes (kind, owner, currency, tenant, bound)."""

    code = "ACCOUNT_CONFLICT"


ERRORS: dict[str, type[LedgerError]] = {
    rules.TRANSFER_CONFLICT: TransferConflict,
    rules.BALANCE_BOUND_EXCEEDED: InsufficientBalance,
    rules.ACCOUNT_NOT_FOUND: AccountNotFound,
    rules.PENDING_NOT_FOUND: PendingNotFound,
    rules.PENDING_ALREADY_POSTED: PendingAlreadyResolved,
    rules.PENDING_ALREADY_VOIDED: PendingAlreadyResolved,
    rules.POST_EXCEEDS_PENDING: PostExceedsPending,
    rules.PENDING_EXPIRED: PendingExpired,
    rules.INVALID_TRANSFER: InvalidTransfer,
}

MESSAGES = {
    rules.TRANSFER_CONFLICT: "transfer {id} was already made with a different {detail}",
    rules.BALANCE_BOUND_EXCEEDED: "transfer {id} would take its {detail} below zero",
    rules.ACCOUNT_NOT_FOUND: "transfer {id} names a {detail} that does not exist",
    rules.PENDING_NOT_FOUND: "transfer {id}: {detail}",
    rules.PENDING_ALREADY_POSTED: "transfer {id}: {detail}",
    rules.PENDING_ALREADY_VOIDED: "transfer {id}: {detail}",
    rules.POST_EXCEEDS_PENDING: "transfer {id} posts more than its pending transfer holds: {detail}",
    rules.PENDING_EXPIRED: "transfer {id}: {detail}",
    rules.INVALID_TRANSFER: "transfer {id} is invalid: {detail}",
}


def error_for(outcome: rules.Outcome, index: int, transfer_id: uuid.UUID) -> LedgerError:
    """The typed error of a failed transfer, naming it by its index in the batch and its id."""
    error_type = ERRORS.get(outcome.result, InvalidTransfer)
    message = MESSAGES.get(outcome.result, "transfer {id} failed: {detail}")
    return error_type(
        message.format(id=transfer_id, detail=outcome.detail or outcome.result),
        result=outcome.result,
        index=index,
        transfer_id=transfer_id,
        detail=outcome.detail,
    )
