"""The predictive benchmark: what the service learns from outcomes, on data this project did not
make (docs/benchmark-predictive.md)."""
