"""Telemetry Collector: ingest -> decode -> validate -> enrich -> anonymize -> batch -> sink."""
