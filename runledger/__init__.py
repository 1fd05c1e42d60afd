"""Runledger process wiring: settings, CLI, supervisor, broker and Kafka helpers."""
