"""The API's key rules as the OpenAPI schema shows them (settings.REST_FRAMEWORK names ApiAutoSchema).

Apart from gauntlet.api_auth because drf-spectacular imports DRF's views, which import the
authentication classes: one module holding both would import itself in a circle.
"""

from django.conf import settings
from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.openapi import AutoSchema
from rest_framework.permissions import SAFE_METHODS

from gauntlet.api_auth import API_KEY_HEADER, ApiKeyAuthentication


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = ApiKeyAuthentication
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema):
        return {"type": "apiKey", "in": "header", "name": API_KEY_HEADER}


class ApiAutoSchema(AutoSchema):
    """Marks reads as callable without a key (unless API_READS_REQUIRE_KEY) in the OpenAPI schema."""

    def get_auth(self):
        auths = super().get_auth()
        if auths and self.method in SAFE_METHODS and not settings.API_READS_REQUIRE_KEY and {} not in auths:
            auths.append({})
        return auths
