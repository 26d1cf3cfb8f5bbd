"""Load harness and benchmarks (issue 4 adds the harness; see RESULTS.md)."""
