"""Notebook apps: ipywidgets front-ends over the batch engine.

    from akool_flows.notebook import ModerationApp
    app = ModerationApp(df, content_column="comment", language="en")
    app                 # pick, estimate, Run / Cancel, watch, export
    app.results         # the results as a DataFrame, in the next cell

With no ``AKOOL_*`` credentials in the environment the apps start the local sandbox in the kernel
and show a SANDBOX badge; pass ``client=`` to use a client of your own.
"""

from akool_flows.notebook.base import BatchAppBase
from akool_flows.notebook.catalog import CatalogTranslationApp
from akool_flows.notebook.connection import (
    Connection,
    resolve_connection,
    shared_sandbox,
    stop_shared_sandbox,
)
from akool_flows.notebook.generic import BatchApp
from akool_flows.notebook.moderation import ModerationApp

__all__ = [
    "BatchApp", "BatchAppBase", "CatalogTranslationApp", "Connection", "ModerationApp", "resolve_connection",
    "shared_sandbox", "stop_shared_sandbox",
]
