"""twentyq monitoring."""
