"""twentyq model."""
