"""Benchmarks behind `make bench` (see ../shared BENCHMARKS.md for what each figure means)."""
