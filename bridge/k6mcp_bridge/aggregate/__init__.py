"""The live aggregation stage: k6's numbers per (sub)metric, snapshots and verdicts."""
