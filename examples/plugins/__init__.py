"""Worked examples of docs/extending.md: one file per role, each registered by import path
in a config (or, in a package of your own, by an entry point)."""
