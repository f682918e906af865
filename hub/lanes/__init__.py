"""Lanes and lot sessions: from a plate read at a lane to the barrier's decision, and the exceptions that need
a person."""
