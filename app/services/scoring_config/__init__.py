"""The versioned scoring config: the active model, versions, diff, activation and preview."""
