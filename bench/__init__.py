"""Benchmarks: run as ``python -m bench.<name>``; they measure and report, they never assert."""
