"""Read-only admin over the ledger: money rows are written by trading.services, never by hand."""

from django.contrib import admin

from trading.models import Account, EquitySnapshot, Fill, LedgerEntry, Order, Position


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(Account)
class AccountAdmin(ReadOnlyAdmin):
    list_display = ("participant", "initial_capital", "cash", "updated_at")
    list_select_related = ("participant",)
    search_fields = ("participant__name",)


@admin.register(Order)
class OrderAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "account",
        "symbol",
        "side",
        "quantity",
        "notional_usd",
        "leverage",
        "status",
        "reject_code",
        "market_time",
    )
    list_filter = ("status", "reject_code", "side")
    list_select_related = ("account__participant",)
    search_fields = ("symbol", "client_ref", "invocation_id")


@admin.register(Position)
class PositionAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "account",
        "symbol",
        "side",
        "quantity",
        "entry_price",
        "exit_price",
        "realised_pnl",
        "fees",
        "funding",
        "is_open",
        "opened_at",
        "closed_at",
    )
    list_filter = ("is_open", "side", "close_reason")
    list_select_related = ("account__participant",)
    search_fields = ("symbol",)


@admin.register(Fill)
class FillAdmin(ReadOnlyAdmin):
    list_display = (
        "id",
        "account",
        "symbol",
        "side",
        "quantity",
        "price",
        "fee",
        "realised_pnl",
        "reason",
        "market_time",
    )
    list_filter = ("reason", "side")
    list_select_related = ("account__participant",)
    search_fields = ("symbol",)


@admin.register(LedgerEntry)
class LedgerEntryAdmin(ReadOnlyAdmin):
    list_display = ("id", "account", "kind", "amount", "description", "market_time")
    list_filter = ("kind",)
    list_select_related = ("account__participant",)


@admin.register(EquitySnapshot)
class EquitySnapshotAdmin(ReadOnlyAdmin):
    list_display = (
        "account",
        "market_time",
        "round_number",
        "equity",
        "cash",
        "unrealised_pnl",
        "used_margin",
        "free_margin",
    )
    list_select_related = ("account__participant",)
