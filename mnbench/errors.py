"""The package's one error type: a message a user can act on.

Library code raises `MnbenchError`; only the CLI turns it into one line on stderr and exit code 2.
"""


class MnbenchError(Exception):
    """A user-facing problem: bad input, a missing device, a damaged file."""

    exit_code = 2
