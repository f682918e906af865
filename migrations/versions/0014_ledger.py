"""ledger: double-entry accounts and immutable transfers, applied only by the engine function

The engine is `ledger_apply(batch jsonb, linked boolean)`, a SECURITY DEFINER function owned by the role running
the migrations: the application role cannot write the ledger's tables, only read them (under row-level security)
and call the engine (and `ledger_ensure_accounts`). The rules the engine applies are stated, in the same order,
by the reference model in hub/ledger/rules.py; tests drive both with the same random batches.

How one batch is applied:
1. every account it touches (and the accounts of the pendings it posts or voids) is locked in id order, so two
   batches never deadlock, and a replay of a transfer waits for the original and then sees it;
2. each transfer is checked against the locked balances as the batch changes them, in memory; a linked batch stops
   at the first failure and writes nothing (no subtransaction: nothing was written yet);
3. the accepted transfers are inserted in one statement and the touched accounts updated in one statement.
A transfer with the same id (or resolving the same pending) committed by another transaction between the check
and the insert, possible only for a different request with the same id on other accounts, makes the call fail with
a serialization failure (retry: the retry sees it and answers `exists` or a conflict).

Transfers are immutable for every role, the owner included (row triggers refuse UPDATE and DELETE, a statement
trigger TRUNCATE, enabled ALWAYS so replication mode does not skip them).

Revision ID: 0014
Revises: 0013
Create Date: 2026-11-22 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from hub.config import get_settings
from tenants import rls

revision: str = "0014"
down_revision: str | None = "0013"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

ACCOUNT_KINDS = (
    "('tenant_payable', 'tenant_payout_in_transit', 'tenant_suspense', 'operator_bank', 'driver_prepaid', "
    "'driver_receivable', 'merchant_coupon_fund', 'provider_clearing', 'provider_settled', 'platform_fee_revenue', "
    "'rounding', 'platform_suspense')"
)
BOUNDS_HOLD = (
    "(NOT debits_must_not_exceed_credits OR debits_pending + debits_posted <= credits_posted) AND "
    "(NOT credits_must_not_exceed_debits OR credits_pending + credits_posted <= debits_posted)"
)
TABLES = ("ledger_accounts", "ledger_transfers")

IMMUTABILITY = """
CREATE FUNCTION ledger_refuse_change() RETURNS trigger
    LANGUAGE plpgsql SET search_path = public, pg_temp AS $$
BEGIN
    RAISE EXCEPTION 'ledger transfers are immutable: % refused (correct a transfer with a new one)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
    RETURN NULL;
END
$$;
CREATE TRIGGER ledger_transfers_immutable BEFORE UPDATE OR DELETE ON ledger_transfers
    FOR EACH ROW EXECUTE FUNCTION ledger_refuse_change();
CREATE TRIGGER ledger_transfers_no_truncate BEFORE TRUNCATE ON ledger_transfers
    FOR EACH STATEMENT EXECUTE FUNCTION ledger_refuse_change();
ALTER TABLE ledger_transfers ENABLE ALWAYS TRIGGER ledger_transfers_immutable;
ALTER TABLE ledger_transfers ENABLE ALWAYS TRIGGER ledger_transfers_no_truncate;
"""

# The pure parts of the checks, as SQL functions the engine calls (same order and words as hub/ledger/rules.py).
CHECK_FUNCTIONS = """
CREATE FUNCTION ledger_transfer_difference(stored ledger_transfers, request ledger_transfers) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
SELECT CASE
    WHEN stored.kind IS DISTINCT FROM request.kind THEN 'kind'
    WHEN (request.debit_account_id IS NOT NULL OR stored.kind NOT IN ('post_pending', 'void_pending'))
        AND stored.debit_account_id IS DISTINCT FROM request.debit_account_id THEN 'debit_account_id'
    WHEN (request.credit_account_id IS NOT NULL OR stored.kind NOT IN ('post_pending', 'void_pending'))
        AND stored.credit_account_id IS DISTINCT FROM request.credit_account_id THEN 'credit_account_id'
    WHEN NOT (stored.kind = 'void_pending' AND request.amount = 0)
        AND stored.amount IS DISTINCT FROM request.amount THEN 'amount'
    WHEN stored.currency IS DISTINCT FROM request.currency THEN 'currency'
    WHEN stored.pending_id IS DISTINCT FROM request.pending_id THEN 'pending_id'
    WHEN stored.code IS DISTINCT FROM request.code THEN 'code'
    WHEN (request.tenant_id IS NOT NULL OR stored.kind NOT IN ('post_pending', 'void_pending'))
        AND stored.tenant_id IS DISTINCT FROM request.tenant_id THEN 'tenant_id'
    WHEN (request.driver_id IS NOT NULL OR stored.kind NOT IN ('post_pending', 'void_pending'))
        AND stored.driver_id IS DISTINCT FROM request.driver_id THEN 'driver_id'
    WHEN stored.reference IS DISTINCT FROM request.reference THEN 'reference'
    WHEN stored.expires_at IS DISTINCT FROM request.expires_at THEN 'expires_at'
END
$$;

CREATE FUNCTION ledger_transfer_shape_problem(t ledger_transfers, at timestamptz) RETURNS text
    LANGUAGE sql IMMUTABLE SET search_path = public, pg_temp AS $$
SELECT CASE
    WHEN t.kind IS NULL OR t.kind NOT IN ('single', 'pending', 'post_pending', 'void_pending')
        THEN 'kind must be one of single, pending, post_pending, void_pending'
    WHEN t.amount IS NULL OR t.amount < 0 OR t.amount > 1000000000000000
        THEN 'amount must be a whole number of minor units from 0 to 1000000000000000'
    WHEN t.code IS NULL OR t.code = '' THEN 'code (the business reason) is required'
    WHEN t.currency IS NULL OR t.currency !~ '^[A-Z]{3}$' THEN 'currency must be an ISO 4217 code'
    WHEN t.kind IN ('single', 'pending') THEN CASE
        WHEN t.pending_id IS NOT NULL THEN 'only a post or a void names a pending transfer'
        WHEN t.debit_account_id IS NULL OR t.credit_account_id IS NULL
            THEN 'the debit and credit accounts are required'
        WHEN t.debit_account_id = t.credit_account_id THEN 'the debit and credit accounts must differ'
        WHEN t.amount = 0 THEN 'amount must be positive'
        WHEN t.expires_at IS NOT NULL AND t.kind = 'single' THEN 'only a pending transfer expires'
        WHEN t.expires_at IS NOT NULL AND t.expires_at <= at THEN 'expires_at must be in the future'
    END
    WHEN t.pending_id IS NULL THEN 'a post or a void names its pending transfer (pending_id)'
    WHEN t.expires_at IS NOT NULL THEN 'only a pending transfer expires'
END
$$;
"""

ENSURE_ACCOUNTS = """
CREATE FUNCTION ledger_ensure_accounts(accounts jsonb) RETURNS jsonb
    LANGUAGE plpgsql SECURITY DEFINER SET search_path = public, pg_temp AS $$
DECLARE
    created integer;
    mismatched jsonb;
BEGIN
    -- In id order, so two transactions creating overlapping sets wait for each other instead of deadlocking.
    WITH wanted AS (
        SELECT * FROM jsonb_to_recordset(accounts) AS w(
            id uuid, currency text, kind text, owner text, tenant_id uuid, driver_id uuid,
            debits_must_not_exceed_credits boolean, credits_must_not_exceed_debits boolean)
    ), written AS (
        INSERT INTO ledger_accounts AS a (id, currency, kind, owner, tenant_id, driver_id,
                                          debits_must_not_exceed_credits, credits_must_not_exceed_debits)
        SELECT w.id, w.currency, w.kind, coalesce(w.owner, ''), w.tenant_id, w.driver_id,
               coalesce(w.debits_must_not_exceed_credits, false), coalesce(w.credits_must_not_exceed_debits, false)
        FROM wanted w ORDER BY w.id
        ON CONFLICT (id) DO NOTHING
        RETURNING 1
    )
    SELECT count(*) INTO created FROM written;
    -- An id names one account for good: the same id with other attributes is refused by the caller.
    SELECT coalesce(jsonb_agg(DISTINCT w.id), '[]'::jsonb) INTO mismatched
    FROM jsonb_to_recordset(accounts) AS w(
        id uuid, currency text, kind text, owner text, tenant_id uuid, driver_id uuid,
        debits_must_not_exceed_credits boolean, credits_must_not_exceed_debits boolean)
    JOIN ledger_accounts a ON a.id = w.id
    WHERE (a.currency, a.kind, a.owner, a.tenant_id, a.driver_id,
           a.debits_must_not_exceed_credits, a.credits_must_not_exceed_debits)
        IS DISTINCT FROM (w.currency, w.kind, coalesce(w.owner, ''), w.tenant_id, w.driver_id,
           coalesce(w.debits_must_not_exceed_credits, false), coalesce(w.credits_must_not_exceed_debits, false));
    RETURN jsonb_build_object('created', created, 'mismatched', mismatched);
END
$$;
"""

APPLY = """
CREATE FUNCTION ledger_apply(batch jsonb, linked boolean DEFAULT true) RETURNS jsonb
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
           array_agg(false ORDER BY l.id)
    INTO acc_ids, acc_currency, acc_dmnec, acc_cmned, acc_dp, acc_dpo, acc_cp, acc_cpo, acc_dirty
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

POLICIES = """
CREATE POLICY ledger_engine ON {table} TO CURRENT_USER USING (true) WITH CHECK (true);
CREATE POLICY platform_read ON {table} FOR SELECT USING ((SELECT app_role()) IN ('platform', 'city'));
CREATE POLICY tenant_read ON {table} FOR SELECT USING (tenant_id = (SELECT app_tenant_id()));
CREATE POLICY driver_read ON {table} FOR SELECT
    USING ((SELECT app_role()) = 'driver' AND driver_id = (SELECT app_user_id()));
"""


def upgrade() -> None:
    op.create_table(
        "ledger_accounts",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("currency", sa.Text(), server_default="CNY", nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("owner", sa.Text(), server_default="", nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("driver_id", sa.UUID(), nullable=True),
        sa.Column("debits_must_not_exceed_credits", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("credits_must_not_exceed_debits", sa.Boolean(), server_default=sa.text("false"), nullable=False),
        sa.Column("debits_pending", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("debits_posted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("credits_pending", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("credits_posted", sa.BigInteger(), server_default=sa.text("0"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.CheckConstraint(f"kind IN {ACCOUNT_KINDS}", name=op.f("ck_ledger_accounts_kind_known")),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_ledger_accounts_currency_format")),
        sa.CheckConstraint(
            "NOT (debits_must_not_exceed_credits AND credits_must_not_exceed_debits)",
            name=op.f("ck_ledger_accounts_one_bound_at_most"),
        ),
        sa.CheckConstraint(
            "debits_pending >= 0 AND debits_posted >= 0 AND credits_pending >= 0 AND credits_posted >= 0",
            name=op.f("ck_ledger_accounts_sums_nonnegative"),
        ),
        sa.CheckConstraint(BOUNDS_HOLD, name=op.f("ck_ledger_accounts_bounds_hold")),
        sa.ForeignKeyConstraint(["driver_id"], ["users.id"], name=op.f("fk_ledger_accounts_driver_id_users")),
        sa.ForeignKeyConstraint(["tenant_id"], ["tenants.id"], name=op.f("fk_ledger_accounts_tenant_id_tenants")),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_accounts")),
        sa.UniqueConstraint("kind", "owner", "currency", name=op.f("uq_ledger_accounts_kind_owner_currency")),
        # Every transfer rewrites two accounts' sums: room on the page keeps those updates HOT.
        postgresql_with={"fillfactor": "80"},
    )
    op.create_index(
        "ix_ledger_accounts_tenant",
        "ledger_accounts",
        ["tenant_id"],
        unique=False,
        postgresql_where=sa.text("tenant_id IS NOT NULL"),
    )
    op.create_index(
        "ix_ledger_accounts_driver",
        "ledger_accounts",
        ["driver_id"],
        unique=False,
        postgresql_where=sa.text("driver_id IS NOT NULL"),
    )

    op.create_table(
        "ledger_transfers",
        sa.Column("id", sa.UUID(), nullable=False),
        sa.Column("seq", sa.BigInteger(), sa.Identity(always=True), nullable=False),
        sa.Column("debit_account_id", sa.UUID(), nullable=False),
        sa.Column("credit_account_id", sa.UUID(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("kind", sa.Text(), nullable=False),
        sa.Column("pending_id", sa.UUID(), nullable=True),
        sa.Column("code", sa.Text(), nullable=False),
        sa.Column("tenant_id", sa.UUID(), nullable=True),
        sa.Column("driver_id", sa.UUID(), nullable=True),
        sa.Column("reference", postgresql.JSONB(astext_type=sa.Text()), server_default=sa.text("'{}'::jsonb"),
                  nullable=False),
        sa.Column("batch_id", sa.UUID(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), server_default=sa.text("now()"), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint(
            "kind IN ('single', 'pending', 'post_pending', 'void_pending')", name=op.f("ck_ledger_transfers_kind_known")
        ),
        sa.CheckConstraint("amount > 0", name=op.f("ck_ledger_transfers_amount_positive")),
        sa.CheckConstraint(
            "debit_account_id <> credit_account_id", name=op.f("ck_ledger_transfers_accounts_differ")
        ),
        sa.CheckConstraint("currency ~ '^[A-Z]{3}$'", name=op.f("ck_ledger_transfers_currency_format")),
        sa.CheckConstraint("code <> ''", name=op.f("ck_ledger_transfers_code_given")),
        sa.CheckConstraint(
            "(pending_id IS NOT NULL) = (kind IN ('post_pending', 'void_pending'))",
            name=op.f("ck_ledger_transfers_pending_id_iff_resolving"),
        ),
        sa.CheckConstraint(
            "expires_at IS NULL OR kind = 'pending'", name=op.f("ck_ledger_transfers_only_pending_expires")
        ),
        sa.ForeignKeyConstraint(
            ["debit_account_id"], ["ledger_accounts.id"], name=op.f("fk_ledger_transfers_debit_account_id_ledger_accounts")
        ),
        sa.ForeignKeyConstraint(
            ["credit_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_ledger_transfers_credit_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["pending_id"], ["ledger_transfers.id"], name=op.f("fk_ledger_transfers_pending_id_ledger_transfers")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_ledger_transfers")),
    )
    op.create_index("ix_ledger_transfers_tenant_created", "ledger_transfers", ["tenant_id", "created_at"])
    op.create_index("ix_ledger_transfers_debit_seq", "ledger_transfers", ["debit_account_id", "seq"])
    op.create_index("ix_ledger_transfers_credit_seq", "ledger_transfers", ["credit_account_id", "seq"])
    op.create_index(
        "ix_ledger_transfers_driver",
        "ledger_transfers",
        ["driver_id", "created_at"],
        postgresql_where=sa.text("driver_id IS NOT NULL"),
    )
    op.create_index(
        "uq_ledger_transfers_pending",
        "ledger_transfers",
        ["pending_id"],
        unique=True,
        postgresql_where=sa.text("pending_id IS NOT NULL"),
    )
    op.create_index(
        "ix_ledger_transfers_expiring",
        "ledger_transfers",
        ["expires_at"],
        postgresql_where=sa.text("kind = 'pending' AND expires_at IS NOT NULL"),
    )

    rls.run_script(IMMUTABILITY)
    rls.run_script(CHECK_FUNCTIONS)
    rls.run_script(ENSURE_ACCOUNTS)
    rls.run_script(APPLY)

    app_role = get_settings().app_role
    # Functions are executable by PUBLIC unless revoked: only the app role may call the engine.
    rls.run_script(
        "REVOKE ALL ON FUNCTION ledger_apply(jsonb, boolean), ledger_ensure_accounts(jsonb) FROM PUBLIC;\n"
        f'GRANT EXECUTE ON FUNCTION ledger_apply(jsonb, boolean), ledger_ensure_accounts(jsonb) TO "{app_role}";\n'
        + rls.grant_tables(app_role, list(TABLES), "SELECT")
    )
    for table in TABLES:
        rls.run_script(
            f"ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;\nALTER TABLE {table} FORCE ROW LEVEL SECURITY;\n"
            + POLICIES.format(table=table)
        )


def downgrade() -> None:
    rls.run_script(
        "DROP FUNCTION ledger_apply(jsonb, boolean);\n"
        "DROP FUNCTION ledger_ensure_accounts(jsonb);\n"
        "DROP FUNCTION ledger_transfer_shape_problem(ledger_transfers, timestamptz);\n"
        "DROP FUNCTION ledger_transfer_difference(ledger_transfers, ledger_transfers);\n"
    )
    op.drop_index("ix_ledger_transfers_expiring", table_name="ledger_transfers")
    op.drop_index("uq_ledger_transfers_pending", table_name="ledger_transfers")
    op.drop_index("ix_ledger_transfers_driver", table_name="ledger_transfers")
    op.drop_index("ix_ledger_transfers_credit_seq", table_name="ledger_transfers")
    op.drop_index("ix_ledger_transfers_debit_seq", table_name="ledger_transfers")
    op.drop_index("ix_ledger_transfers_tenant_created", table_name="ledger_transfers")
    op.drop_table("ledger_transfers")  # DROP fires neither the row nor the TRUNCATE trigger
    rls.run_script("DROP FUNCTION ledger_refuse_change();")
    op.drop_index("ix_ledger_accounts_driver", table_name="ledger_accounts")
    op.drop_index("ix_ledger_accounts_tenant", table_name="ledger_accounts")
    op.drop_table("ledger_accounts")
