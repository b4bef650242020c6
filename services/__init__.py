"""gridbus's services, one package each; registry.py lists them, cli.py is the `gridbus` command."""
