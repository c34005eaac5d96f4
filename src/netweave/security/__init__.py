"""Authentication and authorisation: TLS, tokens, principals and permissions."""
