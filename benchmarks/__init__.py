"""Benchmarks of npi-crawler: ``python -m benchmarks`` (or ``make bench``). Not tests: they print
figures (recorded in docs/performance.md) and fail only if something breaks."""
