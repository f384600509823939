"""Readers for the knowledge base's sources: WordNet 3.0 and the authored tables."""
