"""django-prometheus's request metrics: the same series, each labelled child looked up once per process.

django-prometheus calls `metric.labels(...)` about ten times per request; prometheus_client validates
and stringifies the labels on every call before finding the same child again. The children are kept
here by (metric, label values): the label values are bounded (status codes, view names, the known
methods, charsets), and the values still go to the multiprocess files on every increment.
"""

from __future__ import annotations

from typing import Any

from django_prometheus import middleware as django_prometheus


class _LabelledOnce:
    """Mixed in before django-prometheus's middleware: keeps the labelled children it asks for."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._children: dict[tuple[Any, ...], Any] = {}

    def label_metric(self, metric: Any, request: Any, response: Any = None, **labels: str) -> Any:
        if not labels:
            return metric
        key = (id(metric), *labels.items())
        child = self._children.get(key)
        if child is None:
            child = self._children[key] = metric.labels(**labels)
        return child


class PrometheusBeforeMiddleware(_LabelledOnce, django_prometheus.PrometheusBeforeMiddleware):
    pass


class PrometheusAfterMiddleware(_LabelledOnce, django_prometheus.PrometheusAfterMiddleware):
    pass
