"""The exception queue for remote agents: queries, mutations and the live subscription."""
