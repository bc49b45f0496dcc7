"""Declarative ingestion framework for e-commerce analytics."""
