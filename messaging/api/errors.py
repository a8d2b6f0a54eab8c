"""One error shape for the whole API: {"code": …, "detail": …, "messages": {"ko", "en"}}."""

from django.http import Http404
from rest_framework import exceptions
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_exception_handler

from messaging.compose.refusals import Refusal, RefusalCode

_DRF_CODES = [
    (exceptions.NotAuthenticated, RefusalCode.NOT_AUTHENTICATED),
    (exceptions.AuthenticationFailed, RefusalCode.NOT_AUTHENTICATED),
    (exceptions.PermissionDenied, RefusalCode.PERMISSION_DENIED),
    (exceptions.NotFound, RefusalCode.NOT_FOUND),
    (Http404, RefusalCode.NOT_FOUND),
    (exceptions.MethodNotAllowed, RefusalCode.METHOD_NOT_ALLOWED),
    (exceptions.Throttled, RefusalCode.THROTTLED),
]


def exception_handler(exc, context):
    if isinstance(exc, Refusal):
        return Response(exc.as_body(), status=exc.status)
    if isinstance(exc, exceptions.ValidationError | exceptions.ParseError | exceptions.UnsupportedMediaType):
        errors = encodable(exc.detail if isinstance(exc, exceptions.ValidationError) else {"body": [str(exc.detail)]})
        refusal = Refusal(RefusalCode.INVALID_REQUEST, errors=summary(errors), extra={"errors": errors})
        return Response(refusal.as_body(), status=refusal.status)
    for exc_type, code in _DRF_CODES:
        if isinstance(exc, exc_type):
            response = drf_exception_handler(exc, context) or Response()
            refusal = Refusal(code)
            response.data = refusal.as_body()
            response.status_code = refusal.status
            return response
    return drf_exception_handler(exc, context)


def encodable(errors):
    """DRF quotes the rejected input in some messages ('"x" is not a valid choice'); a lone
    surrogate sent as a JSON escape would then make the error itself unrenderable (a 500)."""
    if isinstance(errors, dict):
        return {encodable(key): encodable(value) for key, value in errors.items()}
    if isinstance(errors, list):
        return [encodable(e) for e in errors]
    if isinstance(errors, str):
        return errors.encode("utf-8", "backslashreplace").decode("utf-8")
    return errors


def summary(errors) -> str:
    if isinstance(errors, dict):
        return "; ".join(f"{field}: {summary(value)}" for field, value in errors.items())
    if isinstance(errors, list):
        return ", ".join(summary(e) for e in errors)
    return str(errors)
