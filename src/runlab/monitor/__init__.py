"""Watching runs: gates that decide at epoch ends, automatic diagnostics, alerts, stop
requests, and the live views behind ``runlab status`` and ``runlab watch``."""
