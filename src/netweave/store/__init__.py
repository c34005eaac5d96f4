"""Durable state shared by gateway replicas: subscriptions, the delivery outbox, leases.

``base.py`` holds the protocols; ``memory.py`` (one process) and ``redis.py`` (several
replicas) implement them, and one contract test suite runs against both.
"""
