"""The inventory view kept current from the backend, and the service layer over it."""
