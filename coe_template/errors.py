"""The package's own refusals: the only exceptions the API answers with a 4xx or a 503.

Anything else raised while serving a request is a bug, and is answered as one.
Each class names a kind of failure, not an HTTP status: the API layer maps them.
"""

from __future__ import annotations

#: The most of a failure's message a failed job or version keeps: enough for any message of ours,
#: bounded whatever an exception carries.
STORED_ERROR_LENGTH = 2000


class CoeError(Exception):
    """Base of every refusal made on purpose; the message says what is wrong and what to do."""


class InvalidInput(CoeError, ValueError):
    """What was asked for cannot be done as given (bad arguments, a malformed batch)."""


class NotFound(CoeError, LookupError):
    """The thing named does not exist."""


class Conflict(CoeError):
    """The request is well formed but the current state forbids it."""


class Unavailable(CoeError):
    """Something outside the request failed; trying again later may succeed."""

    #: Seconds a client should wait before retrying (the class's, unless the raiser knows better).
    retry_after: int = 5

    def __init__(self, *args: object, retry_after: int | None = None) -> None:
        super().__init__(*args)
        if retry_after is not None:
            self.retry_after = retry_after


class DatabaseUnavailable(Unavailable):
    """The registry's database refused, failed or did not answer in time."""


class ArtifactUnavailable(Unavailable):
    """A version's files are missing or do not match their recorded digests: never loaded."""

    retry_after = 60


class StorageFull(Unavailable):
    """No space left where artifacts or the database are written."""

    retry_after = 60


class Busy(Unavailable):
    """The service is at a limit it sets itself (e.g. concurrent trainings)."""

    retry_after = 30


class QuotaExceeded(CoeError):
    """A client has as much work waiting as one client may queue: it may retry once some is done."""

    retry_after: int = 60

    def __init__(self, *args: object, retry_after: int | None = None) -> None:
        super().__init__(*args)
        if retry_after is not None:
            self.retry_after = retry_after
