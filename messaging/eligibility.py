"""The one answer to "may this academy send?", asked when a send is accepted (the API
refuses it) and again when its credit is reserved (the pipeline fails its messages):
staff may switch messaging off, or Solapi may reject the sender, in between.

It answers with a failure class (messaging/failures.py), the pipeline's vocabulary;
the API maps it to its refusal code (messaging/compose/refusals.py). It lives in
messaging, not in tenants, because tenants knows nothing of messaging's failure classes.
"""

from messaging.failures import FailureClass
from tenants.models import SenderStatus, Tenant


def why_academy_cannot_send(tenant: Tenant) -> FailureClass | None:
    """None when the academy may send; otherwise what stops it."""
    if not tenant.messaging_is_active:
        return FailureClass.MESSAGING_INACTIVE
    if not tenant.messaging_sender:
        return FailureClass.SENDER_MISSING
    if tenant.messaging_sender_status == SenderStatus.REJECTED:
        return FailureClass.SENDER_UNREGISTERED
    return None
