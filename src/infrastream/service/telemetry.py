"""This process's Prometheus instruments: counters and histograms of what it did.

They are per process (each server counts its own work; Prometheus sums them). What describes
the database (releases by lane and state) is not here: `api/metrics.py` reads it at scrape
time, so every server reports the same truth. Labels are low-cardinality by rule: lanes,
states, environments, check types, route templates; never a release name.
"""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

ENGINE_PASS = Histogram("infrastream_engine_pass_seconds", "Duration of one engine pass")
ENGINE_BACKLOG = Gauge("infrastream_engine_backlog_releases",
                       "Active releases the last engine pass of this server looked at")
DEPLOYMENTS = Counter("infrastream_deployments_total",
                      "Deployments finished by this server, by environment and outcome",
                      ["environment", "outcome"])
DEPLOYMENT_RETRIES = Counter("infrastream_deployment_retries_total",
                             "Retries after a transient target failure, by environment",
                             ["environment"])
DEPLOYMENT_SECONDS = Histogram("infrastream_deployment_seconds",
                               "Time a deployment took at the target", ["environment"])
CHECKS = Counter("infrastream_checks_total", "Stage checks finished, by type and outcome",
                 ["check", "outcome"])
CHECK_SECONDS = Histogram("infrastream_check_seconds", "Duration of a stage check", ["check"])
HTTP_SECONDS = Histogram("infrastream_http_request_seconds",
                         "HTTP request duration by method, route template and status",
                         ["method", "route", "status"])
SCM_STATUSES = Counter("infrastream_scm_status_deliveries_total",
                       "Commit statuses sent to the SCM host (outbox), by outcome",
                       ["outcome"])
NOTIFICATIONS = Counter("infrastream_notification_deliveries_total",
                        "Notifications sent to channels (outbox), by channel kind and outcome "
                        "(delivered, retried, failed)", ["kind", "outcome"])
WEBHOOKS = Counter("infrastream_webhooks_received_total",
                   "SCM webhook deliveries received, by outcome", ["outcome"])
