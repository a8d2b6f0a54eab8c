"""What a send would do, with no side effects: the same planning as the send itself."""

from typing import Any

from messaging.compose import rules
from messaging.compose.send_requests import SendInput, plan_send
from tenants.models import Tenant


def preview_send(*, tenant: Tenant, data: SendInput) -> dict[str, Any]:
    plan = plan_send(tenant=tenant, data=data)
    return {
        "recipients": [
            {"student_id": m.student_id, "recipient": m.recipient_kind, "phone": m.phone, "text": m.text,
             "type": m.message_type, "fallback_type": m.fallback_type, "bytes": m.bytes, "price": str(m.price),
             "skip_reason": m.skip_reason, "not_before": m.not_before}
            for m in plan.messages
        ],
        "sendable": len(plan.sendable),
        "skipped": len(plan.messages) - len(plan.sendable),
        "total_cost": str(plan.estimated_cost),
        "available": str(plan.available),
        "sufficient_credit": plan.estimated_cost <= plan.available,
        "warnings": rules.likely_ad_warnings(purpose=data.purpose, text=plan.draft.source_text),
    }
