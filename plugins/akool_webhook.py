"""Airflow plugin file for deployments that load plugins from this folder.

Installing akool-flows with pip registers the same plugin through its ``airflow.plugins``
entry point; registering it twice makes Airflow report an "already registered" import error,
so this file only defines the plugin when that entry point is absent (e.g. the package is
on PYTHONPATH but not pip-installed).
"""

from __future__ import annotations

from importlib.metadata import entry_points

if not any(ep.value.startswith("akool_flows.airflow.plugin") for ep in entry_points(group="airflow.plugins")):
    from akool_flows.airflow.plugin import AkoolPlugin  # noqa: F401 - found by Airflow's plugin loader
