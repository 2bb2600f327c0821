"""k6's own semantics, no I/O: built-in metrics, sinks, thresholds, Go literals, the group
tree, the script's options (`k6 inspect`), the text summary and the summary export."""
