"""remote_autograd: torch's autograd API, computed by a remote server."""
