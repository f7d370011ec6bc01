"""Local emulators of remote services no test can reach, written from their public API
references and served on loopback by the real HTTP stack the connectors use."""
