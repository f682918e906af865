"""Pricing: tariffs (tariff.py: the data model, its JSON form and validation) and the pure tariff engine
(rules.py: itemized quotes, exit grace, re-entry)."""
