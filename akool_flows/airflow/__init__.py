"""Airflow provider for Akool: hook, per-kind operators, sensor, trigger, batch operator, plugin.

Importing this package is cheap (Airflow calls ``get_provider_info`` in every process);
the classes load on first use::

    from akool_flows.airflow.operators import AkoolTalkingPhotoOperator
    from akool_flows.airflow import AkoolHook, AkoolJobSensor, AkoolBatchOperator
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from akool_flows.airflow.provider_info import get_provider_info

if TYPE_CHECKING:
    from akool_flows.airflow.batch import AkoolBatchOperator
    from akool_flows.airflow.hooks import AkoolHook
    from akool_flows.airflow.operators import AkoolJobOperator
    from akool_flows.airflow.sensors import AkoolJobSensor
    from akool_flows.airflow.triggers import AkoolJobTrigger

__all__ = ["AkoolBatchOperator", "AkoolHook", "AkoolJobOperator", "AkoolJobSensor", "AkoolJobTrigger",
           "get_provider_info"]

_LAZY = {
    "AkoolHook": "akool_flows.airflow.hooks",
    "AkoolJobOperator": "akool_flows.airflow.operators",
    "AkoolJobSensor": "akool_flows.airflow.sensors",
    "AkoolJobTrigger": "akool_flows.airflow.triggers",
    "AkoolBatchOperator": "akool_flows.airflow.batch",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        # Per-kind operators (AkoolTtsOperator, ...) live in the operators module.
        if name.startswith("Akool") and name.endswith("Operator"):
            ops = importlib.import_module("akool_flows.airflow.operators")
            if hasattr(ops, name):
                return getattr(ops, name)
        raise AttributeError(f"module 'akool_flows.airflow' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
