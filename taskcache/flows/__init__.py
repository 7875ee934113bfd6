"""Flows: steps from YAML/JSON or code, validated, run as cached tasks in parallel, drawn as a
DAG. ``spec`` reads and checks the steps, ``flow`` runs them, ``picture`` draws them."""

from __future__ import annotations

from taskcache.flows.flow import Flow, FlowResult
from taskcache.flows.spec import Step

__all__ = ["Flow", "FlowResult", "Step"]
