"""An external-data benchmark of the health score: the "Fighting Churn With Data" simulator's
social-network product, loaded through the ingest API and scored by the service (docs/benchmark-external.md)."""
