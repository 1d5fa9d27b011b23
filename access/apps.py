from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "API keys"

    def ready(self) -> None:
        from django.db.models.signals import post_delete, post_save

        from access.key_cache import key_changed_here
        from access.models import ApiKey

        def changed(created: bool = False, **kwargs) -> None:
            if not created:  # a new secret: nothing held can be stale
                key_changed_here()

        post_save.connect(changed, sender=ApiKey, weak=False, dispatch_uid="access.keys_changed.save")
        post_delete.connect(changed, sender=ApiKey, weak=False, dispatch_uid="access.keys_changed.delete")
