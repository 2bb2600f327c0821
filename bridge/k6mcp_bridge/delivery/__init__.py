"""The pipeline and the runner: batches to the plugins, exit codes decided."""
