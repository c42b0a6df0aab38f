"""Runs side by side: compare tables with baseline deltas, config and metric diffs, exports."""
