"""Request validation whose errors read in Korean and in English.

DRF words field errors in the active language (Korean here), so the English half of an
`invalid_request` would be Korean too. A request that fails is validated once more in
English; valid requests pay nothing extra.
"""

from django.utils import translation
from rest_framework import serializers

from messaging.api.errors import encodable, summary
from messaging.compose.refusals import Bilingual, Refusal, RefusalCode


def validated(serializer_class: type[serializers.Serializer], data) -> serializers.Serializer:
    serializer = serializer_class(data=data)
    if serializer.is_valid():
        return serializer
    with translation.override("en"):
        english = serializer_class(data=data)
        english.is_valid()
        english_errors = encodable(english.errors)
    raise Refusal(RefusalCode.INVALID_REQUEST, errors=Bilingual(ko=summary(encodable(serializer.errors)),
                                                                en=summary(english_errors)),
                  extra={"errors": english_errors})
