"""Prometheus metrics for Swarm: definitions (metrics.py), the independent exporter (exporter.py)."""
