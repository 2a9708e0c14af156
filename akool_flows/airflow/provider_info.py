"""What Airflow's ProvidersManager reads about this provider.

A plain dict with no imports: Airflow calls ``get_provider_info`` in every process that
discovers providers (scheduler, API server, DAG processor, workers), so it must be cheap and
must not pull in the hook. The connection form is declared here (``conn-fields`` and
``ui-field-behaviour``) because Airflow 3.3 builds the form only from provider info.
"""

from __future__ import annotations

from typing import Any

_INTEGRATION = "Akool"


def get_provider_info() -> dict[str, Any]:
    """Provider metadata for the ``apache_airflow_provider`` entry point."""
    return {
        "package-name": "akool-flows",
        "name": "Akool",
        "description": "Run Akool AI media jobs (face swap, talking photo, video translation, TTS, "
        "moderation, ...) from Airflow: one operator per job kind, deferrable waiting, a batch "
        "operator and a webhook receiver.",
        "integrations": [
            {
                "integration-name": _INTEGRATION,
                "external-doc-url": "https://docs.akool.com/",
                "tags": ["service"],
            }
        ],
        "hooks": [{"integration-name": _INTEGRATION, "python-modules": ["akool_flows.airflow.hooks"]}],
        "operators": [
            {
                "integration-name": _INTEGRATION,
                "python-modules": ["akool_flows.airflow.operators", "akool_flows.airflow.batch"],
            }
        ],
        "sensors": [{"integration-name": _INTEGRATION, "python-modules": ["akool_flows.airflow.sensors"]}],
        "triggers": [{"integration-name": _INTEGRATION, "python-modules": ["akool_flows.airflow.triggers"]}],
        "connection-types": [
            {
                "connection-type": "akool",
                "hook-class-name": "akool_flows.airflow.hooks.AkoolHook",
                "hook-name": "Akool",
                "ui-field-behaviour": {
                    "hidden-fields": ["schema", "port"],
                    "relabeling": {
                        "host": "Base URL (empty = https://openapi.akool.com)",
                        "login": "Client ID",
                        "password": "Client Secret",
                    },
                    "placeholders": {
                        "host": "https://openapi.akool.com",
                        "login": "clientId from the Akool API credentials page",
                        "password": "clientSecret (also decrypts webhooks)",
                        "extra": '{"detect_url": "https://sg3.akool.com/detect"}',
                    },
                },
                "conn-fields": {
                    "token": {
                        "label": "API token",
                        "description": "A bearer token instead of Client ID / Client Secret.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "api_key": {
                        "label": "API key",
                        "description": "An API key (sent as x-api-key) instead of a token or client credentials.",
                        "schema": {"type": ["string", "null"], "format": "password"},
                    },
                    "detect_url": {
                        "label": "Face detect URL",
                        "description": "Face detect endpoint (empty = https://sg3.akool.com/detect).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "webhook_url": {
                        "label": "Webhook URL",
                        "description": "Public URL of the webhook receiver mounted by the akool plugin "
                        "(https://<airflow>/akool/webhook/<path token>). Set it to complete jobs "
                        "from Akool's callbacks instead of polling alone.",
                        "schema": {"type": ["string", "null"]},
                    },
                    "webhook_store_url": {
                        "label": "Webhook event store",
                        "description": "SQLAlchemy URL of the event store the receiver writes and "
                        "triggers read (shared by API server and triggerer).",
                        "schema": {"type": ["string", "null"]},
                    },
                    "max_requests_per_second": {
                        "label": "Max requests per second",
                        "description": "Client-side rate limit per process (empty = none).",
                        "schema": {"type": ["number", "null"]},
                    },
                },
            }
        ],
        "config": {
            "akool": {
                "description": "The Akool webhook receiver mounted in the API server by the akool plugin.",
                "options": {
                    "webhook_conn_id": {
                        "description": "Connection whose Client ID / Client Secret decrypt the callbacks.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "akool_default",
                        "default": "akool_default",
                    },
                    "webhook_store_url": {
                        "description": "SQLAlchemy URL of the webhook event store (empty: the connection's "
                        "webhook_store_url extra, else sqlite:///$AIRFLOW_HOME/akool-webhooks.sqlite).",
                        "version_added": "0.1.0",
                        "type": "string",
                        "example": "postgresql+psycopg://airflow@db/akool",
                        "default": "",
                    },
                    "webhook_path_token": {
                        "description": "Secret path segment of the callback URL (16-128 characters of "
                        "A-Z a-z 0-9 _ -). Empty: /akool/webhook is unprotected by a path token.",
                        "version_added": "0.1.0",
                        "type": "string",
                        "sensitive": True,
                        "example": "output of: python -c 'import secrets; print(secrets.token_urlsafe(32))'",
                        "default": "",
                    },
                },
            }
        },
        "plugins": [{"name": "akool", "plugin-class": "akool_flows.airflow.plugin.AkoolPlugin"}],
    }
