"""Domain errors shared by every app's services.

Services raise these with a machine code and a human message; the API turns them into
400 (DomainError) or 409 (ConflictError) responses, admin actions into messages.
"""


class DomainError(Exception):
    """A request the rules refuse; nothing was changed."""

    code = "invalid"

    def __init__(self, message: str, *, code: str | None = None, field: str | None = None):
        super().__init__(message)
        self.message = message
        self.field = field
        if code is not None:
            self.code = code


class ConflictError(DomainError):
    """The request is valid in general but not in the object's current state."""

    code = "conflict"


class NotFoundError(DomainError):
    code = "not_found"
