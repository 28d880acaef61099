"""Importers: other rule languages into siemc analytics (docs/import.md)."""
