"""twentyq worker."""
