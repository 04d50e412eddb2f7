"""Data in: pushed records, Segment calls, pulled sources and the quarantine (``/api/v1/ingest``)."""
