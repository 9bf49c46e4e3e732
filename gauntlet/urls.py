"""URL map: admin, the REST API under /api/v1, its OpenAPI schema and docs, the pages."""

from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

admin.site.site_header = "Gauntlet administration"
admin.site.site_title = "Gauntlet admin"
admin.site.index_title = "Competitions, agents and market data"

urlpatterns = [
    path("admin/", admin.site.urls),
    path("api/v1/", include("gauntlet.api_urls")),
    path("api/schema", SpectacularAPIView.as_view(), name="api-schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="api-schema"), name="api-docs"),
    path("", include("web.urls")),
]
