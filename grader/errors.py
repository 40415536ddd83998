"""Typed errors. Each message says what went wrong and what a TA can do about it."""


class GraderError(Exception):
    """Base class: the CLI prints these as one line and exits non-zero."""

    exit_code = 1


class DataError(GraderError):
    """MNIST could not be provisioned, or the cache is damaged."""

    exit_code = 3


class ChecksumError(DataError):
    """A downloaded or regenerated file does not carry its published checksum."""


class AssignmentError(GraderError):
    """An assignment folder or its `assignment.toml` is missing or malformed."""

    exit_code = 2
