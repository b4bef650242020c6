"""The dispatch console: the command centre's web page on the services' gRPC APIs."""
