"""Tests of akool_flows.webhook."""
