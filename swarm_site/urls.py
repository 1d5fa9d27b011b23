from django.contrib import admin
from django.urls import include, path

from observability.metrics import metrics_view
from routing.openai_api import ChatCompletionsView, ModelsView
from routing.openai_completions import CompletionsView
from routing.openai_resources import EmbeddingsView, ModelDetailView
from routing.pages import ChatPageView
from routing.stats import StatsView
from routing.views import HealthView, HybridView, OrchestrateView, VoteView
from swarm_site.schema import SchemaDocsView, SchemaView
from training.views import ReloadView, TrainingStatusView

urlpatterns = [
    path("admin/reload", ReloadView.as_view(), name="reload"),  # before the admin site, which would take it
    path("admin/", admin.site.urls),
    path("health", HealthView.as_view(), name="health"),
    path("metrics", metrics_view, name="metrics"),
    path("orchestrate", OrchestrateView.as_view(), name="orchestrate"),
    path("vote", VoteView.as_view(), name="vote"),
    path("hybrid", HybridView.as_view(), name="hybrid"),
    path("v1/chat/completions", ChatCompletionsView.as_view(), name="chat-completions"),
    path("v1/completions", CompletionsView.as_view(), name="completions"),
    path("v1/models", ModelsView.as_view(), name="models"),
    path("v1/models/<path:model_id>", ModelDetailView.as_view(), name="model-detail"),
    path("v1/embeddings", EmbeddingsView.as_view(), name="embeddings"),
    path("chat", ChatPageView.as_view(), name="chat"),
    path("api/stats", StatsView.as_view(), name="stats"),
    path("api/training", TrainingStatusView.as_view(), name="training-status"),
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SchemaDocsView.as_view(), name="api-docs"),
    path("", include("arbiter.urls")),
]
