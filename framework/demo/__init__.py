"""Demo data: a realistic OLTP source so the framework can be tried and tested end to end."""
