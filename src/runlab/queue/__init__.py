"""Launching from the dashboard: recipes (what a form may change), a file queue of launches
and the workers that run them."""
