"""The exceptions paperfeed raises on purpose.

Every error a user can cause derives from :class:`PaperfeedError`; the CLI prints its
message on one line and exits with its ``exit_code``; the web layer maps ``status`` to an
HTTP status. Anything else escaping is a bug.
"""

from __future__ import annotations


class PaperfeedError(Exception):
    """A failure caused by input, configuration or environment, with a readable message."""

    exit_code = 1
    status = 400


class NotFoundError(PaperfeedError):
    """An id or path that does not exist."""

    status = 404


class FormatError(PaperfeedError):
    """A whole input could not be read as the requested or detected format.

    Parsers raise this only when nothing at all can be read (wrong format, not text, empty);
    a single bad record is never an exception: it is yielded as a ``Rejected`` item.
    """


class StoreError(PaperfeedError):
    """The store cannot be opened or is in a state this version cannot use."""

    status = 500
