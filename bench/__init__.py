"""Benchmarks of the hub (issue 2). Never run by the tests; see bench/README.md."""
