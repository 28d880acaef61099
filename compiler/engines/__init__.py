"""Adapters that execute compiled queries in real target engines (differential tests)."""
