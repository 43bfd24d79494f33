"""Stream plumbing around the scoring core: inputs, generators, the embedded engine and workers."""
