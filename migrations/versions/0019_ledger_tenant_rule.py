"""ledger: the tenant rule in the engine (settlement collects a tenant's money by the transfers' tenant_id)

Every account a tenant owns (its `tenant_id` is set: tenant_payable, tenant_payout_in_transit, tenant_suspense,
operator_bank, and a merchant's coupon fund, which belongs to the merchant's tenant) must only be moved by transfers
that carry that tenant. `ledger_apply` is replaced (the same function as in 0014, three additions):

1. a single or pending transfer that names no tenant takes the tenant of its tenant-owned account (before the replay
   check, so an identical replay derives the same tenant and answers `exists`);
2. a transfer whose tenant_id differs from the tenant owning its account is refused: `invalid_transfer`, "tenant_id
   differs from the tenant owning its account";
3. a transfer between two different tenants' accounts is refused: `invalid_transfer`, "the debit and credit accounts
   belong to different tenants". None of the money flows needs it; money that must cross operators goes through a
   platform account in two transfers, each carrying its own tenant.

A post or void keeps inheriting its pending's tenant; a pending stored before this rule without one gets its
account's tenant on the post or void. The checks run after the pending's and before the bounds, in the same order
as the reference model (hub/ledger/rules.py, `LedgerModel`). Transfers stored before this migration are not
changed (they are immutable); `parkhub ledger check` reports any that break the rule.

Revision ID: 0019
Revises: 0018
Create Date: 2026-11-23 10:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path

from tenants import rls

revision: str = "0019"
down_revision: str | None = "0018"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

APPLY = """
CREATE OR REPLACE FUNCTION ledger_apply(batch jsonb, linked boolean DEFAULT true) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    total integer;
    item jsonb;
    req ledger_transfers;        -- the transfer as asked
    rec ledger_transfers;        -- as it will be stored (a post or void gets its pending's accounts)
    earlier ledger_transfers;    -- a transfer with the same id, stored or earlier in this batch
    pend ledger_transfers;       -- the pending a post or void resolves
    resolution text;
    outcome text;
    reason text;
    outcomes text[] := '{}';
    reasons text[] := '{}';
    failed_at integer;
    -- the locked accounts, in id order, with their sums as this batch changes them
    acc_ids uuid[];
    acc_currency text[];
    acc_dmnec boolean[];
    acc_cmned boolean[];
    acc_dp bigint[];
    acc_dpo bigint[];
    acc_cp bigint[];
    acc_cpo bigint[];
    acc_dirty boolean[];
    acc_tenant uuid[];           -- the tenant owning each locked account (null: not a tenant's)
    owner_tenant uuid;
    di integer;
    ci integer;
    d_dp bigint; d_dpo bigint; d_cp bigint; d_cpo bigint;
    c_dp bigint; c_dpo bigint; c_cp bigint; c_cpo bigint;
    posted bigint;
    staged ledger_transfers[] := '{}';
    staged_ids uuid[] := '{}';
    staged_pendings uuid[] := '{}';
    hit integer;
    wanted uuid[];
    pendings_named uuid[];
    this_batch uuid := gen_random_uuid();
    inserted integer;
BEGIN
    IF jsonb_typeof(batch) IS DISTINCT FROM 'array' THEN
        RAISE EXCEPTION 'ledger_apply takes a JSON array of transfers' USING ERRCODE = 'invalid_parameter_value';
    END IF;
    total := jsonb_array_length(batch);
    IF total = 0 THEN
        RETURN '[]'::jsonb;
    END IF;

    -- Every statement below finds rows by their key (`= ANY(array)`), never by a join whose size the planner
    -- would have to guess from a JSON function: the plans stay index lookups however large the tables grow.
    SELECT coalesce(array_agg(DISTINCT account), '{}') INTO wanted
    FROM (
        SELECT (e ->> 'debit_account_id')::uuid FROM jsonb_array_elements(batch) AS e
        UNION ALL SELECT (e ->> 'credit_account_id')::uuid FROM jsonb_array_elements(batch) AS e
    ) AS named(account)
    WHERE account IS NOT NULL;
    SELECT coalesce(array_agg(DISTINCT (e ->> 'pending_id')::uuid), '{}') INTO pendings_named
    FROM jsonb_array_elements(batch) AS e
    WHERE e ->> 'pending_id' IS NOT NULL;
    IF cardinality(pendings_named) > 0 THEN
        SELECT wanted || coalesce(array_agg(t.debit_account_id) || array_agg(t.credit_account_id), '{}')
        INTO wanted
        FROM ledger_transfers t WHERE t.id = ANY(pendings_named);
    END IF;
    SELECT array_agg(l.id ORDER BY l.id), array_agg(l.currency ORDER BY l.id),
           array_agg(l.debits_must_not_exceed_credits ORDER BY l.id),
           array_agg(l.credits_must_not_exceed_debits ORDER BY l.id),
           array_agg(l.debits_pending ORDER BY l.id), array_agg(l.debits_posted ORDER BY l.id),
           array_agg(l.credits_pending ORDER BY l.id), array_agg(l.credits_posted ORDER BY l.id),
           array_agg(false ORDER BY l.id), array_agg(l.tenant_id ORDER BY l.id)
    INTO acc_ids, acc_currency, acc_dmnec, acc_cmned, acc_dp, acc_dpo, acc_cp, acc_cpo, acc_dirty, acc_tenant
    FROM (
        SELECT a.* FROM ledger_accounts a WHERE a.id = ANY(wanted) ORDER BY a.id FOR NO KEY UPDATE
    ) AS l;

    FOR idx IN 0 .. total - 1 LOOP
        item := batch -> idx;
        outcome := NULL;
        reason := NULL;
        req := NULL;
        req.id := (item ->> 'id')::uuid;
        req.debit_account_id := (item ->> 'debit_account_id')::uuid;
        req.credit_account_id := (item ->> 'credit_account_id')::uuid;
        req.amount := (item ->> 'amount')::bigint;
        req.currency := item ->> 'currency';
        req.kind := item ->> 'kind';
        req.pending_id := (item ->> 'pending_id')::uuid;
        req.code := item ->> 'code';
        req.tenant_id := (item ->> 'tenant_id')::uuid;
        req.driver_id := (item ->> 'driver_id')::uuid;
        req.reference := coalesce(nullif(item -> 'reference', 'null'::jsonb), '{}'::jsonb);
        req.expires_at := (item ->> 'expires_at')::timestamptz;
        req.batch_id := this_batch;
        -- A transfer that names no tenant takes the tenant of its tenant-owned account, before the replay check,
        -- so an identical replay derives the same tenant and is `exists`.
        IF req.tenant_id IS NULL AND req.kind IN ('single', 'pending') THEN
            req.tenant_id := coalesce(acc_tenant[array_position(acc_ids, req.debit_account_id)],
                                      acc_tenant[array_position(acc_ids, req.credit_account_id)]);
        END IF;

        <<checks>>
        BEGIN
            IF req.id IS NULL OR req.id = '00000000-0000-0000-0000-000000000000'::uuid THEN
                outcome := 'invalid_transfer';
                reason := 'id is required and must not be the nil uuid';
                EXIT checks;
            END IF;
            hit := array_position(staged_ids, req.id);
            IF hit IS NOT NULL THEN
                earlier := staged[hit];
            ELSE
                SELECT * INTO earlier FROM ledger_transfers t WHERE t.id = req.id;
            END IF;
            IF earlier.id IS NOT NULL THEN
                reason := ledger_transfer_difference(earlier, req);
                outcome := CASE WHEN reason IS NULL THEN 'exists' ELSE 'transfer_conflict' END;
                EXIT checks;
            END IF;
            reason := ledger_transfer_shape_problem(req, now());
            IF reason IS NOT NULL THEN
                outcome := 'invalid_transfer';
                EXIT checks;
            END IF;

            IF req.kind IN ('single', 'pending') THEN
                pend := NULL;
                di := array_position(acc_ids, req.debit_account_id);
                IF di IS NULL THEN
                    outcome := 'account_not_found'; reason := 'debit account'; EXIT checks;
                END IF;
                ci := array_position(acc_ids, req.credit_account_id);
                IF ci IS NULL THEN
                    outcome := 'account_not_found'; reason := 'credit account'; EXIT checks;
                END IF;
                IF acc_currency[di] <> req.currency OR acc_currency[ci] <> req.currency THEN
                    outcome := 'invalid_transfer'; reason := 'the accounts'' currency differs from the transfer''s';
                    EXIT checks;
                END IF;
                rec := req;
            ELSE
                hit := array_position(staged_ids, req.pending_id);
                IF hit IS NOT NULL THEN
                    pend := staged[hit];
                ELSE
                    SELECT * INTO pend FROM ledger_transfers t WHERE t.id = req.pending_id;
                END IF;
                IF pend.id IS NULL OR pend.kind <> 'pending' THEN
                    outcome := 'pending_not_found'; reason := 'no pending transfer has this id'; EXIT checks;
                END IF;
                reason := CASE
                    WHEN req.debit_account_id IS NOT NULL
                        AND req.debit_account_id IS DISTINCT FROM pend.debit_account_id THEN 'debit_account_id'
                    WHEN req.credit_account_id IS NOT NULL
                        AND req.credit_account_id IS DISTINCT FROM pend.credit_account_id THEN 'credit_account_id'
                    WHEN req.tenant_id IS NOT NULL AND req.tenant_id IS DISTINCT FROM pend.tenant_id THEN 'tenant_id'
                    WHEN req.driver_id IS NOT NULL AND req.driver_id IS DISTINCT FROM pend.driver_id THEN 'driver_id'
                END;
                IF reason IS NOT NULL THEN
                    outcome := 'invalid_transfer'; reason := reason || ' differs from the pending transfer''s';
                    EXIT checks;
                END IF;
                IF req.currency <> pend.currency THEN
                    outcome := 'invalid_transfer'; reason := 'currency differs from the pending transfer''s';
                    EXIT checks;
                END IF;
                hit := array_position(staged_pendings, req.pending_id);
                IF hit IS NOT NULL THEN
                    resolution := (staged[hit]).kind;
                ELSE
                    SELECT t.kind INTO resolution FROM ledger_transfers t WHERE t.pending_id = req.pending_id;
                END IF;
                IF resolution = 'post_pending' THEN
                    outcome := 'pending_already_posted'; reason := 'the pending transfer was posted'; EXIT checks;
                ELSIF resolution = 'void_pending' THEN
                    outcome := 'pending_already_voided'; reason := 'the pending transfer was voided'; EXIT checks;
                END IF;
                IF req.kind = 'post_pending' THEN
                    IF pend.expires_at IS NOT NULL AND pend.expires_at <= now() THEN
                        outcome := 'pending_expired'; reason := 'the pending transfer expired'; EXIT checks;
                    END IF;
                    IF req.amount = 0 THEN
                        outcome := 'invalid_transfer';
                        reason := 'a post names the amount it posts (a void releases a pending)';
                        EXIT checks;
                    END IF;
                    IF req.amount > pend.amount THEN
                        outcome := 'post_exceeds_pending';
                        reason := 'the pending transfer reserved ' || pend.amount;
                        EXIT checks;
                    END IF;
                ELSIF req.amount NOT IN (0, pend.amount) THEN
                    outcome := 'invalid_transfer';
                    reason := 'a void releases the whole pending amount (give 0 or the pending amount)';
                    EXIT checks;
                END IF;
                rec := req;
                rec.debit_account_id := pend.debit_account_id;
                rec.credit_account_id := pend.credit_account_id;
                rec.amount := CASE WHEN req.kind = 'void_pending' THEN pend.amount ELSE req.amount END;
                rec.tenant_id := coalesce(req.tenant_id, pend.tenant_id);
                rec.driver_id := coalesce(req.driver_id, pend.driver_id);
                di := array_position(acc_ids, rec.debit_account_id);
                ci := array_position(acc_ids, rec.credit_account_id);
            END IF;

            -- The tenant rule: settlement collects by tenant_id, so a transfer on a tenant's account carries that
            -- tenant (a post or void of a pending stored before this rule takes it here too); money never moves
            -- between two tenants' accounts directly.
            IF acc_tenant[di] IS NOT NULL AND acc_tenant[ci] IS NOT NULL AND acc_tenant[di] <> acc_tenant[ci] THEN
                outcome := 'invalid_transfer';
                reason := 'the debit and credit accounts belong to different tenants';
                EXIT checks;
            END IF;
            owner_tenant := coalesce(acc_tenant[di], acc_tenant[ci]);
            IF owner_tenant IS NOT NULL THEN
                IF rec.tenant_id IS NULL THEN
                    rec.tenant_id := owner_tenant;
                ELSIF rec.tenant_id <> owner_tenant THEN
                    outcome := 'invalid_transfer';
                    reason := 'tenant_id differs from the tenant owning its account';
                    EXIT checks;
                END IF;
            END IF;

            d_dp := acc_dp[di]; d_dpo := acc_dpo[di]; d_cp := acc_cp[di]; d_cpo := acc_cpo[di];
            c_dp := acc_dp[ci]; c_dpo := acc_dpo[ci]; c_cp := acc_cp[ci]; c_cpo := acc_cpo[ci];
            IF rec.kind = 'single' THEN
                d_dpo := d_dpo + rec.amount;
                c_cpo := c_cpo + rec.amount;
            ELSIF rec.kind = 'pending' THEN
                d_dp := d_dp + rec.amount;
                c_cp := c_cp + rec.amount;
            ELSE
                posted := CASE WHEN rec.kind = 'post_pending' THEN rec.amount ELSE 0 END;
                d_dp := d_dp - pend.amount;
                d_dpo := d_dpo + posted;
                c_cp := c_cp - pend.amount;
                c_cpo := c_cpo + posted;
            END IF;
            IF (acc_dmnec[di] AND d_dp + d_dpo > d_cpo) OR (acc_cmned[di] AND d_cp + d_cpo > d_dpo) THEN
                outcome := 'balance_bound_exceeded'; reason := 'debit account'; EXIT checks;
            END IF;
            IF (acc_dmnec[ci] AND c_dp + c_dpo > c_cpo) OR (acc_cmned[ci] AND c_cp + c_cpo > c_dpo) THEN
                outcome := 'balance_bound_exceeded'; reason := 'credit account'; EXIT checks;
            END IF;

            acc_dp[di] := d_dp; acc_dpo[di] := d_dpo; acc_cp[di] := d_cp; acc_cpo[di] := d_cpo;
            acc_dp[ci] := c_dp; acc_dpo[ci] := c_dpo; acc_cp[ci] := c_cp; acc_cpo[ci] := c_cpo;
            acc_dirty[di] := true;
            acc_dirty[ci] := true;
            staged := array_append(staged, rec);
            staged_ids := array_append(staged_ids, rec.id);
            staged_pendings := array_append(staged_pendings, rec.pending_id);
            outcome := 'created';
        END checks;

        outcomes := array_append(outcomes, outcome);
        reasons := array_append(reasons, reason);
        IF linked AND outcome NOT IN ('created', 'exists') THEN
            failed_at := idx + 1;
            EXIT;
        END IF;
    END LOOP;

    IF failed_at IS NOT NULL THEN
        RETURN (
            SELECT jsonb_agg(
                CASE WHEN n = failed_at
                    THEN jsonb_build_object('result', outcomes[failed_at], 'detail', reasons[failed_at])
                    ELSE jsonb_build_object('result', 'linked_event_failed') END
                ORDER BY n)
            FROM generate_series(1, total) AS n
        );
    END IF;

    IF cardinality(staged) > 0 THEN
        WITH written AS (
            INSERT INTO ledger_transfers (id, debit_account_id, credit_account_id, amount, currency, kind, pending_id,
                                          code, tenant_id, driver_id, reference, batch_id, expires_at)
            SELECT s.id, s.debit_account_id, s.credit_account_id, s.amount, s.currency, s.kind, s.pending_id,
                   s.code, s.tenant_id, s.driver_id, s.reference, s.batch_id, s.expires_at
            FROM unnest(staged) AS s
            ON CONFLICT DO NOTHING
            RETURNING 1
        )
        SELECT count(*) INTO inserted FROM written;
        IF inserted <> cardinality(staged) THEN
            RAISE EXCEPTION 'a concurrent transaction created a transfer of this batch meanwhile; retry'
                USING ERRCODE = 'serialization_failure';
        END IF;
        SELECT array_agg(acc_ids[n]) INTO wanted FROM generate_subscripts(acc_ids, 1) AS n WHERE acc_dirty[n];
        UPDATE ledger_accounts a
        SET debits_pending = acc_dp[array_position(acc_ids, a.id)],
            debits_posted = acc_dpo[array_position(acc_ids, a.id)],
            credits_pending = acc_cp[array_position(acc_ids, a.id)],
            credits_posted = acc_cpo[array_position(acc_ids, a.id)]
        WHERE a.id = ANY(wanted);
    END IF;

    RETURN (
        SELECT jsonb_agg(jsonb_strip_nulls(jsonb_build_object('result', o.outcome, 'detail', o.reason)) ORDER BY o.n)
        FROM unnest(outcomes, reasons) WITH ORDINALITY AS o(outcome, reason, n)
    );
END
$$;

"""


def upgrade() -> None:
    rls.run_script(APPLY)


def downgrade() -> None:
    # Back to 0014's engine, word for word (its text is the source of truth of that revision).
    spec = importlib.util.spec_from_file_location("ledger_0014", Path(__file__).with_name("0014_ledger.py"))
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    previous: str = module.APPLY
    rls.run_script(previous.replace("CREATE FUNCTION ledger_apply", "CREATE OR REPLACE FUNCTION ledger_apply", 1))
