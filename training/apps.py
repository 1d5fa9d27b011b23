from django.apps import AppConfig


class TrainingConfig(AppConfig):
    name = "training"
    verbose_name = "LoRA distillation"

    def ready(self) -> None:
        from training import signals  # noqa: F401 - connects the train worker's preload hook
