"""Benchmarks: find-a-space over HTTP against the same search straight through asyncpg.

Figures and ratios are printed, never asserted: timings depend on the machine."""
