"""``twentyq bench``: load generation, the four scenarios, and the report."""
