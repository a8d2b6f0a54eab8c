"""API tokens, checked together with the academies the caller may act for.

Every API request needs both: who calls (the token) and for which academy (messaging/api/tenancy.py).
DRF's TokenAuthentication reads the token and its user, then tenancy read the memberships: two
statements, each compiled by the ORM, on every request. Here one statement reads the memberships
through the token; a caller with none that match (a token of no academy, an X-Tenant of another
academy, a wrong token) falls back to DRF's own check, so the answers (401 or 404) are unchanged.
docs/benchmarks.md, "Everyday load", has what it saves.
"""

from dataclasses import dataclass

from rest_framework import authentication
from rest_framework.authtoken.models import Token
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.request import Request

from tenants.models import Membership, Tenant

TENANT_HEADER = "X-Tenant"
# Enough to tell "one academy" from "several" when no X-Tenant header chooses.
ACADEMIES_READ = 2


@dataclass(frozen=True)
class Academies:
    """The academies a caller may act for, as read for one X-Tenant value ("" when absent): at
    most ACADEMIES_READ of them."""

    slug: str
    tenants: list[Tenant]


def requested_slug(request) -> str:
    return request.headers.get(TENANT_HEADER, "").strip()


def memberships_for(slug: str):
    """Memberships, with their academies, narrowed to the X-Tenant academy when one is named."""
    memberships = Membership.objects.select_related("tenant").order_by("id")
    return memberships.filter(tenant__slug=slug) if slug else memberships


class TokenAuthentication(authentication.TokenAuthentication):
    """DRF's token check (same header, same 401s), reading the caller's academies in the same
    statement; they ride on the token (request.auth.academies)."""

    slug = ""

    def authenticate(self, request: Request):
        # DRF makes an authenticator per request: keeping the request's header here is safe.
        self.slug = requested_slug(request)
        return super().authenticate(request)

    def authenticate_credentials(self, key: str):
        rows = list(memberships_for(self.slug).select_related("user")
                    .filter(user__auth_token__key=key)[:ACADEMIES_READ])
        if not rows:
            # No academy matches: DRF's own check says whether the token is valid at all.
            user, token = super().authenticate_credentials(key)
            token.academies = Academies(self.slug, [])
            return user, token
        user = rows[0].user
        if not user.is_active:
            raise AuthenticationFailed("User inactive or deleted.")
        token = Token(key=key, user=user)
        token.academies = Academies(self.slug, [row.tenant for row in rows])
        return user, token
