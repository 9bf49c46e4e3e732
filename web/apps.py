from django.apps import AppConfig


class WebConfig(AppConfig):
    """The HTML pages: views, page queries, Plotly figures, templates and template tags.

    No models: it reads through competitions.selectors and the other apps' selectors.
    """

    name = "web"
    verbose_name = "Pages"
