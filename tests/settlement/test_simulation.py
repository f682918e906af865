"""A seeded simulation of the money path through settlement: random payments, refunds, coupons and unknown
adjustments over several days and operators, each day settled, payouts randomly confirmed or failed. Afterwards,
to the fen: what drivers paid (less refunds, plus coupons and adjustments) equals payouts + fees + what is carried
or not yet settled, every statement reconciles to its transfers and the ledger's legs, and the payable's available
balance equals the last carry plus what no statement holds yet. A failing seed reproduces."""

from __future__ import annotations

import random
from datetime import timedelta

import pytest

from hub.db import PLATFORM, Database
from hub.settlement import service
from tests.settlement.conftest import adjustment, coupon, make_operator, move, payable_balance, payment, refund, settle

DAYS = 5
OPERATORS = 3


@pytest.mark.parametrize("seed", [1, 7, 2026])
async def test_payouts_fees_and_carries_add_up_to_what_was_collected(db: Database, seed: int) -> None:
    rng = random.Random(seed)
    operators = [await make_operator(db, fee_bps=rng.choice([0, 35, 60, 250])) for _ in range(OPERATORS)]
    collected = {op.tenant_id: 0 for op in operators}
    payouts = {op.tenant_id: 0 for op in operators}
    returned = {op.tenant_id: 0 for op in operators}  # failed payouts a later statement took back
    failed = {op.tenant_id: 0 for op in operators}
    fees = {op.tenant_id: 0 for op in operators}
    last = {}
    for day_index in range(DAYS):
        for op in operators:
            moves = []
            for _ in range(rng.randint(0, 25)):
                roll, amount = rng.random(), rng.randint(1, 50_000)
                if roll < 0.6:
                    moves.append(payment(op, amount))
                    collected[op.tenant_id] += amount
                elif roll < 0.8:
                    moves.append(refund(op, amount))
                    collected[op.tenant_id] -= amount
                elif roll < 0.92:
                    moves.append(coupon(op, amount))
                    collected[op.tenant_id] += amount
                else:
                    signed = amount if rng.random() < 0.5 else -amount
                    moves.append(adjustment(op, signed))
                    collected[op.tenant_id] += signed
            if moves:
                await move(db, moves)
            statement = (await settle(db, op, op.today() + timedelta(days=day_index))).statement
            fees[op.tenant_id] += statement["fee"]
            payouts[op.tenant_id] += statement["payout"]
            returned[op.tenant_id] += statement["returned"]
            last[op.tenant_id] = statement
            async with db.transaction(PLATFORM) as session:
                assert await service.verify_statement(session, op.tenant_id, statement["id"]) == []
                if statement["payout"] > 0:
                    if rng.random() < 0.3:
                        await service.fail_payout(session, statement["id"], reason="simulated bounce")
                        failed[op.tenant_id] += statement["payout"]
                    elif rng.random() < 0.7:
                        await service.confirm_payout(session, statement["id"])
    for op in operators:
        async with db.transaction(PLATFORM) as session:
            unsettled, _ = await service.unsettled(session, op.tenant_id)
        tenant, carried = op.tenant_id, last[op.tenant_id]["carried_out"]
        not_yet_returned = failed[tenant] - returned[tenant]
        # unsettled holds both payable movements and voids of failed payouts no statement took back yet
        settled_moves = collected[tenant] - (unsettled - not_yet_returned)
        assert payouts[tenant] - returned[tenant] + fees[tenant] + carried == settled_moves, seed
        balance = await payable_balance(db, op)
        assert balance.available == carried + unsettled, seed
