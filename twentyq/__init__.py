"""The `twentyq` command: one entry point over the producer, worker, sidecar and model."""
