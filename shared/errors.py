"""Domain errors. Each names the gRPC status it maps to; messages are for people."""
from __future__ import annotations


class DomainError(Exception):
    code = "UNKNOWN"

    def __init__(self, message: str):
        super().__init__(message)
        self.message = message


class InvalidArgument(DomainError):
    code = "INVALID_ARGUMENT"


class NotFound(DomainError):
    code = "NOT_FOUND"


class AlreadyExists(DomainError):
    code = "ALREADY_EXISTS"


class FailedPrecondition(DomainError):
    code = "FAILED_PRECONDITION"


class Aborted(DomainError):
    """A concurrent change won; the caller may re-read and retry."""
    code = "ABORTED"


class ResourceExhausted(DomainError):
    """The request asks for more than a documented limit allows."""
    code = "RESOURCE_EXHAUSTED"


class PermissionDenied(DomainError):
    code = "PERMISSION_DENIED"


class Unauthenticated(DomainError):
    code = "UNAUTHENTICATED"

