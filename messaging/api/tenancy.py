"""Which academy a request acts for: the X-Tenant header (a slug), or the user's only one.

Staff of another academy get 404, not 403: a foreign academy must look like one that
does not exist.
"""

from rest_framework.request import Request
from rest_framework.views import APIView

from messaging.api.authentication import ACADEMIES_READ, memberships_for, requested_slug
from messaging.api.throttles import AcademyRateThrottle
from messaging.compose.refusals import Refusal, RefusalCode
from tenants.models import Tenant


def tenant_for_request(request: Request) -> Tenant:
    slug = requested_slug(request)
    # A token's check has read them already (messaging/api/authentication.py); a session has not.
    academies = getattr(request.auth, "academies", None)
    if academies is not None and academies.slug == slug:
        mine = academies.tenants
    else:
        mine = [m.tenant for m in memberships_for(slug).filter(user=request.user)[:ACADEMIES_READ]]
    if not mine:
        raise Refusal(RefusalCode.TENANT_NOT_FOUND)
    if len(mine) > 1:
        raise Refusal(RefusalCode.TENANT_REQUIRED)
    return mine[0]


class TenantAPIView(APIView):
    """An authenticated view acting for one academy, resolved before the handler runs, and
    throttled per academy as well as per caller."""

    tenant: Tenant

    def initial(self, request, *args, **kwargs):
        super().initial(request, *args, **kwargs)
        self.tenant = tenant_for_request(request)
        # The per-caller throttle ran in super(); the academy's needs the academy.
        throttle = AcademyRateThrottle()
        if not throttle.allow_request(request, self):
            self.throttled(request, throttle.wait())
