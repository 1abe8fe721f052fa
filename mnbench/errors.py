"""The package's one error type: a message a user can act on.

Library code raises `MnbenchError`; only the CLI turns it into one line on stderr and exit code 2.
"""


class MnbenchError(Exception):
    """A user-facing problem: bad input, a missing device, a damaged file."""

    exit_code = 2


def exception_text(exc: BaseException, *, limit: int = 400, first_line_only: bool = True) -> str:
    """A runtime's exception as one line for a MnbenchError message, cut to `limit` characters.

    `first_line_only=False` joins every non-empty line instead: OpenVINO's first line is often only
    "Exception from src/...cpp:123:", and what went wrong follows it."""
    text = str(exc).strip()
    if first_line_only:
        line = text.splitlines()[0] if text else ""
    else:
        line = " ".join(part.strip() for part in text.splitlines() if part.strip())
    return line[:limit] or type(exc).__name__
