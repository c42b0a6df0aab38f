"""Flows: steps (commands, runs, gates, packages) in the order their references make, each
cached by a key of what it depends on (:mod:`runlab.flow.spec`, :mod:`runlab.flow.engine`)."""
