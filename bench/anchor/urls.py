from django.urls import path

from bench.anchor.views import AnswerView

urlpatterns = [path("answer", AnswerView.as_view())]
