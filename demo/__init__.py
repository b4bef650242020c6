"""The demo city and the demo run."""
