"""The double-entry ledger: accounts, immutable transfers, two-phase and linked transfers, invariant checks."""
