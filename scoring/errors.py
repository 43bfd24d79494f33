"""The scoring package's one exception root.

ScoringError
 ├── ModelError    the model file is missing, malformed or inconsistent
 └── StateError    a serialised user state cannot be decoded
"""


class ScoringError(Exception):
    """Root of every error the scoring core raises."""


class ModelError(ScoringError):
    """The model file is missing, malformed or inconsistent."""


class StateError(ScoringError):
    """A serialised user state cannot be decoded."""
