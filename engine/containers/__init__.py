"""Containers: records, the lifecycle service, restart policies and user resolution."""
