"""Inbound events: the durable, deduplicated inbox that connectors feed, and applying its events."""
