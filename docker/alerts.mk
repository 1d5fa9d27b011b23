# Alert drill targets; the main Makefile does `include docker/alerts.mk`.
# Standalone: make -f docker/alerts.mk test-alerts-e2e
PYTHON ?= .venv/bin/python
# The Pushgateway `clear-chaos` talks to (the drill passes its own private one).
PUSHGATEWAY_URL ?= http://127.0.0.1:9191

.PHONY: test-alerts-e2e clear-chaos install-prometheus check-alert-rules

# Real Prometheus + Alertmanager + Pushgateway on loopback: chaos VRAM metric -> Warning ->
# Critical at the webhook -> clear-chaos -> both resolved. Installs the Debian packages when
# missing (as root). Takes about 20 s.
test-alerts-e2e:
	$(PYTHON) scripts/alert_drill.py run

# Delete the chaos metrics pushed by a drill from the Pushgateway at $(PUSHGATEWAY_URL).
clear-chaos:
	$(PYTHON) scripts/alert_drill.py clear-chaos --pushgateway $(PUSHGATEWAY_URL)

# promtool, prometheus, alertmanager, pushgateway from Debian when missing (as root; no service is
# started). Best effort: without root or apt it warns, and the promtool tests skip saying why.
install-prometheus:
	python3 scripts/alert_drill.py install --best-effort

check-alert-rules:
	promtool check rules docker/prometheus/alerts.yml
	cd docker/prometheus && promtool test rules alerts_test.yml
	promtool check config docker/prometheus/prometheus.yml
	amtool check-config docker/alertmanager/alertmanager.yml
