"""The one exception the sandbox raises to answer a request with a Solapi error body."""

from http import HTTPStatus

from .codes import ERROR_MESSAGES, ErrorCode


class SolapiError(Exception):
    """Becomes a reply `{"errorCode": ..., "errorMessage": ...}` with the given HTTP status."""

    def __init__(self, status: HTTPStatus | int, code: ErrorCode | str, message: str | None = None) -> None:
        self.status = int(status)
        self.code = str(code)
        self.message = message or ERROR_MESSAGES.get(code, self.code)
        super().__init__(self.status, self.code, self.message)

    def body(self) -> dict[str, str]:
        return {"errorCode": self.code, "errorMessage": self.message}


def validation_error(message: str) -> SolapiError:
    return SolapiError(HTTPStatus.BAD_REQUEST, ErrorCode.VALIDATION_ERROR, message)


def not_found(what: str) -> SolapiError:
    return SolapiError(HTTPStatus.NOT_FOUND, ErrorCode.RESOURCE_NOT_FOUND, f"{what} 을(를) 찾을 수 없습니다.")
