from django.apps import AppConfig


class AccessConfig(AppConfig):
    name = "access"
    verbose_name = "API keys"

    def ready(self) -> None:
        from django.db import transaction
        from django.db.models.signals import post_delete, post_save

        from access.key_cache import key_cache, keys_changed
        from access.models import ApiKey

        def changed(created: bool = False, **kwargs) -> None:
            if created:
                return  # a new secret: nothing held can be stale
            key_cache.invalidate()  # this process, at once
            transaction.on_commit(keys_changed)  # every process, once the change is visible

        post_save.connect(changed, sender=ApiKey, weak=False, dispatch_uid="access.keys_changed.save")
        post_delete.connect(changed, sender=ApiKey, weak=False, dispatch_uid="access.keys_changed.delete")
