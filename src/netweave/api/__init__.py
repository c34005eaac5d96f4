"""HTTP surfaces of the gateway: one router module per surface, thin over the services."""
