from decimal import Decimal, InvalidOperation

from django import forms
from django.contrib import admin, messages

from billing.ledger import top_up
from billing.models import CreditAccount, Hold, LedgerEntry, Price, TenantPrice
from tenants.admin import GuardedAdmin, ReadOnlyAdmin, action_form_page, custom_permission, record_action


@admin.register(Price)
class PriceAdmin(GuardedAdmin):
    list_display = ["message_type", "amount"]


@admin.register(TenantPrice)
class TenantPriceAdmin(GuardedAdmin):
    list_display = ["tenant", "message_type", "amount"]
    list_filter = ["message_type"]


class TopUpForm(forms.Form):
    amount = forms.DecimalField(min_value=Decimal("0.01"), max_digits=14, decimal_places=2)
    memo = forms.CharField(max_length=200, required=False)


@admin.register(CreditAccount)
class CreditAccountAdmin(ReadOnlyAdmin):
    list_display = ["tenant", "balance", "held", "available", "updated"]
    search_fields = ["tenant__name", "tenant__slug"]
    actions = ["top_up_selected"]
    object_actions = ["top_up_selected"]

    @admin.display(description="사용 가능 (available)")
    def available(self, account: CreditAccount) -> Decimal:
        return account.available

    has_top_up_credit_permission = custom_permission("billing.top_up_credit")

    # The form's second step posts back to this action, so the same permission guards it
    # (GuardedAdmin refuses the POST with 403 before the action runs).
    @admin.action(description="Top up the selected accounts (충전)", permissions=["top_up_credit"])
    def top_up_selected(self, request, queryset):
        form = TopUpForm(request.POST if "apply" in request.POST else None)
        if "apply" in request.POST and form.is_valid():
            amount, memo = form.cleaned_data["amount"], form.cleaned_data["memo"] or "admin top-up"
            topped_up = []
            try:
                for account in queryset.select_related("tenant"):
                    # The ledger entry names the user too (created_by).
                    top_up(tenant=account.tenant, amount=amount, memo=memo, user=request.user)
                    topped_up.append(account)
            except (ValueError, InvalidOperation) as exc:
                self.message_user(request, f"Top-up refused: {exc}", messages.ERROR)
                return None
            finally:
                record_action(request, topped_up, f"topped up {amount} ({memo})")
            self.message_user(request, f"Topped up {len(topped_up)} account(s) by {amount}.")
            return None
        return action_form_page(
            request, self, queryset.select_related("tenant"), form, action="top_up_selected", title="Top up credit",
            intro="Top up these accounts:", submit="Top up",
            describe=lambda account: f"{account.tenant}: balance {account.balance}, held {account.held}")


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    # Each row's own balance and held after it (balance_after, held_after); the account column
    # names the academy only, never its current balance (CreditAccount.__str__).
    list_display = ["id", "account", "kind", "balance_delta", "held_delta", "balance_after", "held_after",
                    "message_id", "message_count", "memo", "created"]
    list_filter = ["kind"]
    search_fields = ["account__tenant__slug", "=message_id"]
    list_select_related = ["account__tenant"]


@admin.register(Hold)
class HoldAdmin(ReadOnlyAdmin):
    list_display = ["message_id", "account", "amount", "status", "captured_amount", "refunded", "created", "closed",
                    "refunded_at"]
    list_filter = ["status", "refunded"]
    search_fields = ["=message_id"]
