"""Loopback servers that speak each provider's wire protocol, and the conformance suite."""
