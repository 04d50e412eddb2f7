"""Alerts beyond the scoring run: the ``/api/v1/alerts`` use cases, delivery (dispatch, digests) and shared settings."""
