"""Serving gateway: endpoints, routing, protocols, micro-batching, prediction log."""
