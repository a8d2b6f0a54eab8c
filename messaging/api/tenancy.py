"""Which academy a request acts for: the X-Tenant header (a slug), or the user's only one.

Staff of another academy get 404, not 403: a foreign academy must look like one that
does not exist.
"""

from rest_framework.request import Request
from rest_framework.views import APIView

from messaging.api.throttles import AcademyRateThrottle
from messaging.compose.refusals import Refusal, RefusalCode
from tenants.models import Membership, Tenant

TENANT_HEADER = "X-Tenant"


def tenant_for_request(request: Request) -> Tenant:
    memberships = Membership.objects.filter(user=request.user).select_related("tenant")
    slug = request.headers.get(TENANT_HEADER, "").strip()
    if slug:
        membership = memberships.filter(tenant__slug=slug).first()
        if membership is None:
            raise Refusal(RefusalCode.TENANT_NOT_FOUND)
        return membership.tenant
    mine = list(memberships[:2])
    if not mine:
        raise Refusal(RefusalCode.TENANT_NOT_FOUND)
    if len(mine) > 1:
        raise Refusal(RefusalCode.TENANT_REQUIRED)
    return mine[0].tenant


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
