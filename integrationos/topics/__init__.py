"""Topic declarations, the event envelope and its Avro encoding: the contract between
the API and the engine (both import this package, never each other)."""
