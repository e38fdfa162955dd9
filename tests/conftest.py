"""Fixtures shared by every test directory."""

pytest_plugins = ["tests.e2e.launch"]
