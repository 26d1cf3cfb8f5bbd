"""Load harness and benchmarks (NFR-3; the numbers in RESULTS.md)."""
