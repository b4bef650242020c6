"""gridbus's common library: one way to do each thing, used by every service."""
