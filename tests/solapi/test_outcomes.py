"""The Solapi status-code table, code by code (messaging/solapi/outcomes.py), and the
HTTP error table (messaging/solapi/errors.py)."""

import pytest

from messaging.failures import FailureClass as F
from messaging.solapi import errors
from messaging.solapi.outcomes import STATUS_CODE_CLASSES, classify_status

EXPECTED = {
    F.SENDER_UNREGISTERED: ["1062", "2062", "3059", "3013"],
    F.RECIPIENT_INVALID: ["3010", "3032", "3050", "3031"],
    F.RECIPIENT_OPTED_OUT: ["1061", "2061"],
    F.RECIPIENT_BLOCKED: ["1060", "2060", "1064", "2064", "2254", "3047", "3054", "3055", "3060"],
    F.CONTENT: ["1010", "1011", "2011", "3011", "1013", "1014", "1025", "1026", "1027", "1028", "1029", "1031",
                "1032", "1033", "1034"],
    F.KAKAO_CONFIG: [str(c) for c in range(1041, 1054)] + ["3101", "3102", "3103", "3104", "3105", "3106", "3107"],
    F.TRANSIENT: ["1024", "2024", "3024", "3012", "3014", "3048", "3040", "3041", "3042", "3043", "3044", "3045",
                  "3046", "3051", "3052", "3053", "3056", "3057", "3058", "3108"],
    F.PLATFORM_BALANCE: ["1030", "2230"],
    F.PLATFORM: ["2063"],
    F.AUTH_FAILED: ["1020"],
    F.REJECTED: ["1021", "1022", "1023"],
}


@pytest.mark.parametrize(("code", "failure_class"),
                         [(code, failure_class) for failure_class, codes in EXPECTED.items() for code in codes])
def test_each_known_code_has_its_class(code, failure_class):
    assert classify_status(code).failure_class == failure_class


def test_the_table_holds_exactly_the_codes_above():
    assert set(STATUS_CODE_CLASSES) == {code for codes in EXPECTED.values() for code in codes}


@pytest.mark.parametrize(("code", "delivered", "in_progress"), [("4000", True, False), ("2000", False, True),
                                                                  ("3000", False, True)])
def test_success_and_progress_codes_are_not_failures(code, delivered, in_progress):
    outcome = classify_status(code)
    assert (outcome.failure_class, outcome.delivered, outcome.in_progress) == (None, delivered, in_progress)


@pytest.mark.parametrize(("code", "failure_class"), [
    ("1999", F.UNKNOWN),      # an unknown registration refusal stays refused
    ("1099", F.UNKNOWN),
    ("3999", F.TRANSIENT),    # an unknown carrier code: temporary (staff may retry it once)
    ("3777", F.TRANSIENT),
    ("2999", F.UNKNOWN),
    ("", F.UNKNOWN),
    (None, F.UNKNOWN),
])
def test_unknown_codes_fall_back_by_their_family(code, failure_class):
    assert classify_status(code).failure_class == failure_class


@pytest.mark.parametrize(("status", "body", "error_type", "ambiguous"), [
    (403, {"errorCode": "InvalidApiKey"}, errors.SolapiAuthError, False),
    (403, {"errorCode": "InvalidAPIKey"}, errors.SolapiAuthError, False),
    (403, {"errorCode": "SignatureDoesNotMatch"}, errors.SolapiAuthError, False),
    (403, {"errorCode": "Forbidden"}, errors.SolapiAuthError, False),
    (401, None, errors.SolapiAuthError, False),
    (401, {"errorCode": "Unauthorized"}, errors.SolapiAuthError, False),
    (403, {"errorCode": "RequestTimeTooSkewed"}, errors.SolapiClockSkewError, False),
    (403, {"errorCode": "DuplicatedSignature"}, errors.SolapiTransientError, False),
    (402, {"errorCode": "NotEnoughBalance"}, errors.SolapiPlatformBalanceError, False),
    (402, None, errors.SolapiPlatformBalanceError, False),
    (429, None, errors.SolapiRateLimited, False),
    (429, {"errorCode": "TooManyRequests"}, errors.SolapiRateLimited, False),
    (500, None, errors.SolapiServerError, True),
    (503, {"errorCode": "ServiceUnavailable"}, errors.SolapiServerError, True),
    (400, {"errorCode": "ValidationError"}, errors.SolapiRejectedError, False),
    (404, {"errorCode": "ResourceNotFound"}, errors.SolapiRejectedError, False),
    (413, {"errorCode": "RecipientsTooMany"}, errors.SolapiRejectedError, False),
])
def test_http_errors_are_typed_by_error_code_then_status(status, body, error_type, ambiguous):
    error = errors.error_from_response(status, body)

    assert type(error) is error_type
    assert (error.http_status, error.ambiguous) == (status, ambiguous)
    assert error.as_dict()["failure_class"] == str(error_type.failure_class)
