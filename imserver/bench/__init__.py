"""Micro-benchmarks of the server's own code, in-process (NFR-3): what the hot path and the sensitive-word filter
cost per message, where no load test from outside can separate them. Each is a script,
``python -m imserver.bench.NAME``; the numbers, with machine and command, are in ``load/RESULTS.md``."""
