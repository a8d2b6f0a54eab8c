"""Request rates per caller and per academy (DRF throttling), answered 429 `throttled`.

The rates come from settings.API_THROTTLE_RATES when a request is checked, not when DRF's
settings were first read, so an operator's change (or a test's) takes effect. Counters
live in the cache (settings.CACHES): shared between web processes only with a shared cache.
"""

from django.conf import settings
from rest_framework.throttling import SimpleRateThrottle


class _SettingsRateThrottle(SimpleRateThrottle):
    def get_rate(self) -> str:
        return settings.API_THROTTLE_RATES[self.scope]


class TokenRateThrottle(_SettingsRateThrottle):
    """Per caller: a user has one API token, so per user is per token. Requests that are not
    authenticated are refused (401) before throttles run, so they are not counted here."""

    scope = "token"

    def get_cache_key(self, request, view) -> str | None:
        if not request.user or not request.user.is_authenticated:
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.user.pk}


class AcademyRateThrottle(_SettingsRateThrottle):
    """Per academy, over all its staff: checked once the view knows the academy
    (messaging/api/tenancy.py)."""

    scope = "academy"

    def get_cache_key(self, request, view) -> str | None:
        return self.cache_format % {"scope": self.scope, "ident": view.tenant.id}
