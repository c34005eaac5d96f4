"""Infrastructure backends, each an ``InfrastructureAdapter`` (see ``base.py``)."""
