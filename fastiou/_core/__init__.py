"""The shared core: dispatch (backend registry and the rule that picks one), array interop, and
configuration (thresholds, threads). It imports no family."""
