"""Helpers the test suites share: real services started for the test session."""
