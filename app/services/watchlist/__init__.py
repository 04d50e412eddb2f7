"""The at-risk watchlist: listing, pins, the page cache, band overrides and score-change attribution."""
