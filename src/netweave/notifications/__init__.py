"""Subscriptions and notifications: matching, the outbox and delivery to SMO callbacks."""
