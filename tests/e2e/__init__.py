"""End-to-end tests: real core and gateway processes on loopback ports."""
