"""Who may read what operators read: /healthz's details and /metrics.

Staff (an admin session) or a caller with HEALTH_TOKEN in the X-Health-Token header: the
details name hosts, queues and error texts, and the metrics tell a stranger how much we send.
"""

import hmac

from django.conf import settings

HEALTH_TOKEN_HEADER = "X-Health-Token"


def may_read_operator_details(request) -> bool:
    user = getattr(request, "user", None)
    if user is not None and user.is_active and user.is_staff:
        return True
    token = request.headers.get(HEALTH_TOKEN_HEADER, "")
    return bool(settings.HEALTH_TOKEN and token) and hmac.compare_digest(token.encode(),
                                                                        settings.HEALTH_TOKEN.encode())
