"""A URLconf with /metrics wired the way swarm_site/urls.py should wire it."""

from django.urls import path

from observability.metrics import metrics_view

urlpatterns = [path("metrics", metrics_view, name="metrics")]
