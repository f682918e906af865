"""Payment providers: one interface (base.py), the sandbox (sandbox.py) and WeChat Pay v3 (wechatpay.py).

Providers speak their own formats and never touch the database; hub/payments calls them and records what
they say. Import the contract from here:

    from connectors.payments import ChargeRequest, PaymentProvider, ProviderUnavailable, ...
"""

from connectors.payments.base import (
    CallbackRejected,
    ChargeRequest,
    DeductionRequest,
    InvalidPaymentRequest,
    OrderStatus,
    ParkingEntry,
    ParkingEntryRequest,
    PaymentProvider,
    PlateColor,
    ProviderError,
    ProviderEvent,
    ProviderEventKind,
    ProviderOrder,
    ProviderReply,
    ProviderUnavailable,
    RefundRequest,
    ReplyStatus,
    ServiceQuery,
    ServiceState,
    ServiceStatus,
    SettlementRecord,
)
from connectors.payments.money import MoneyFormatError, decimal_to_fen, fen_to_decimal

__all__ = [
    "CallbackRejected",
    "ChargeRequest",
    "DeductionRequest",
    "InvalidPaymentRequest",
    "MoneyFormatError",
    "OrderStatus",
    "ParkingEntry",
    "ParkingEntryRequest",
    "PaymentProvider",
    "PlateColor",
    "ProviderError",
    "ProviderEvent",
    "ProviderEventKind",
    "ProviderOrder",
    "ProviderReply",
    "ProviderUnavailable",
    "RefundRequest",
    "ReplyStatus",
    "ServiceQuery",
    "ServiceState",
    "ServiceStatus",
    "SettlementRecord",
    "decimal_to_fen",
    "fen_to_decimal",
]
