"""The arbiter's routes; swarm_site/urls.py includes them with `path("", include("arbiter.urls"))`."""

from django.urls import path

from arbiter.views import ScheduleDetailView, ScheduleListView, SwapLockView, SwapView

urlpatterns = [
    path("api/swap/lock", SwapLockView.as_view(), name="arbiter-swap-lock"),
    path("api/swap", SwapView.as_view(), name="arbiter-swap"),
    path("api/schedule", ScheduleListView.as_view(), name="arbiter-schedule"),
    path("api/schedule/<int:pk>", ScheduleDetailView.as_view(), name="arbiter-schedule-detail"),
]
