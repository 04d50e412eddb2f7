"""Benchmarks: ``python -m bench.run_bench`` (or ``make bench``)."""
