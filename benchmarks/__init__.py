"""On-demand measurements (not tests): run `python -m benchmarks.embedded`."""
