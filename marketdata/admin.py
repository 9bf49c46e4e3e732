from datetime import date

from django import forms
from django.contrib import admin

from marketdata.models import Dataset, Instrument, MarketSnapshotRecord
from marketdata.selectors import dataset_list


class HolidayListField(forms.CharField):
    """Closed days typed one per line; stored as the same JSON list of ISO dates."""

    widget = forms.Textarea(attrs={"rows": 4, "cols": 20, "placeholder": "2026-12-25"})

    def prepare_value(self, value):
        return "\n".join(value) if isinstance(value, list) else value

    def to_python(self, value):
        days = []
        for line in (super().to_python(value) or "").replace(",", "\n").splitlines():
            line = line.strip().strip("\"'[] ")
            if not line:
                continue
            try:
                days.append(date.fromisoformat(line).isoformat())
            except ValueError as exc:
                raise forms.ValidationError(f"{line!r} is not a date like 2026-12-25.") from exc
        return sorted(set(days))


class InstrumentForm(forms.ModelForm):
    holidays = HolidayListField(
        required=False, help_text="Local dates the session is closed, one per line (YYYY-MM-DD)."
    )

    class Meta:
        model = Instrument
        fields = "__all__"


@admin.register(Instrument)
class InstrumentAdmin(admin.ModelAdmin):
    form = InstrumentForm
    list_display = (
        "symbol",
        "name",
        "asset_class",
        "price_precision",
        "quantity_precision",
        "min_quantity",
        "hours_kind",
        "session_timezone",
        "session_open",
        "session_close",
        "default_max_leverage",
        "is_active",
    )
    list_filter = ("asset_class", "hours_kind", "is_active")
    search_fields = ("symbol", "name")
    list_editable = ("is_active",)
    fieldsets = (
        (None, {"fields": ("symbol", "name", "asset_class", "is_active")}),
        ("Sizes", {"fields": ("price_precision", "quantity_precision", "min_quantity")}),
        (
            "Trading hours",
            {
                "fields": ("hours_kind", "session_timezone", "session_open", "session_close", "holidays"),
                "description": "Crypto 24/7; forex Sun 22:00 to Fri 22:00 UTC; an exchange session "
                "runs Monday to Friday in its own time zone (holidays: local ISO dates).",
            },
        ),
        (
            "Default costs",
            {
                "fields": (
                    "default_fee_pct",
                    "default_spread_bps",
                    "default_slippage_bps",
                    "default_funding_rate_pct_8h",
                    "default_financing_rate_pct_annual",
                    "default_max_leverage",
                )
            },
        ),
    )


@admin.register(Dataset)
class DatasetAdmin(admin.ModelAdmin):
    list_display = ("name", "provenance", "coverage", "revision", "updated_at")
    readonly_fields = ("revision", "created_at", "updated_at", "coverage")
    search_fields = ("name",)

    def get_queryset(self, request):
        self._coverage = {c.name: c for c in dataset_list()}
        return super().get_queryset(request)

    @admin.display(description="coverage")
    def coverage(self, dataset):
        coverage = getattr(self, "_coverage", {}).get(dataset.name)
        if coverage is None or not coverage.series:
            return "empty"
        missing = sum(s.missing_bars for s in coverage.series)
        return (
            f"{len(coverage.symbols)} symbols, {coverage.rows} rows, "
            f"{coverage.first:%Y-%m-%d} to {coverage.last:%Y-%m-%d}, {missing} missing bars"
        )


@admin.register(MarketSnapshotRecord)
class MarketSnapshotRecordAdmin(admin.ModelAdmin):
    list_display = ("at", "source", "dataset", "created_at")
    list_filter = ("source", "dataset")
    date_hierarchy = "at"
    readonly_fields = ("at", "source", "dataset", "payload", "created_at")

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
