"""The pure scoring core: lifecycle stages, measures, the weighted health score, bands and drivers."""
