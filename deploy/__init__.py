"""Offline checks of the deployment files (docker-compose.yml, k8s/)."""
