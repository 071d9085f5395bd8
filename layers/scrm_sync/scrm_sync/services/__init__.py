"""Use cases. Each takes its ports as parameters; adapters implement the ports."""
