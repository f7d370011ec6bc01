"""The HTTP API: writes become events on the log, reads come from the projected tables."""
