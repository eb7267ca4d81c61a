"""Durable state: the only code that talks to Redis (fakeredis in memory, or a real one).
``core.Store`` holds messages, claims, logs, dead letters and keys; one companion module per
resource keeps that resource's keys; ``keyspace`` names every key."""
