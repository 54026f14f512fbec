"""Tests of dialogs.triage."""
