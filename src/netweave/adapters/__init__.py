"""Infrastructure backends; each implements :class:`netweave.adapters.base.InfrastructureAdapter`."""
