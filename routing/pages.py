"""HTML pages: the chat page (GET /chat), a plain page over the OpenAI-compatible API."""

from __future__ import annotations

from django.views.generic import TemplateView

from routing.openai_api import AUTO_MODEL


class ChatPageView(TemplateView):
    """GET /chat: type a prompt, watch the answer stream in, see its route, confidence, cost and latency."""

    template_name = "routing/chat.html"
    extra_context = {"default_model": AUTO_MODEL}
