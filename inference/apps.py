from django.apps import AppConfig


class InferenceConfig(AppConfig):
    name = "inference"
    verbose_name = "Models and inference"

    def ready(self) -> None:
        from inference import signals  # noqa: F401 - connects the worker hooks
