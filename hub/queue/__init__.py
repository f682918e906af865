"""The exception queue: remote agents claim and resolve what lanes could not decide (plate disagreements, low
confidence, exits without entry, duplicate entries, gate faults, barriers held too long), every action audited,
the queue live over GraphQL subscriptions. See service.py for the use cases and rules.py for who may do what."""
