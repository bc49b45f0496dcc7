"""Onboarding: `framework init` (a new table's pipeline from its source), `framework plan` (what a
run would do) and the dbt `landing` source generated from the pipeline files."""
