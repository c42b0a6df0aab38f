"""Integrations with other training frameworks: ``runlab.integrations.lightning``."""
