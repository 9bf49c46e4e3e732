from django.contrib import admin

from agents.models import Invocation, StructuredOutputCapability


@admin.register(Invocation)
class InvocationAdmin(admin.ModelAdmin):
    """Read-only audit trail: invocations are written by rounds only."""

    list_display = (
        "id",
        "participant",
        "round",
        "provider",
        "model",
        "status",
        "latency_ms",
        "input_tokens",
        "output_tokens",
        "cost_usd",
        "retries",
        "structured_output_mode",
        "escaped_characters",
        "created_at",
    )
    list_filter = ("status", "provider", "prompt_version", "structured_output_mode")
    search_fields = ("participant__name", "model", "error")
    list_select_related = ("participant", "round")
    date_hierarchy = "created_at"

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False

    def has_delete_permission(self, request, obj=None):
        return False


@admin.register(StructuredOutputCapability)
class StructuredOutputCapabilityAdmin(admin.ModelAdmin):
    """What each server was found to accept. Learned by calls, never typed in; deleting a row
    makes the next call probe the server from the strongest mode again."""

    list_display = ("base_url", "model", "mode", "updated_at")
    list_filter = ("mode",)
    search_fields = ("base_url", "model")

    def get_readonly_fields(self, request, obj=None):
        return [field.name for field in self.model._meta.fields]

    def has_add_permission(self, request):
        return False

    def has_change_permission(self, request, obj=None):
        return False
