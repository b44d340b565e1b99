"""Adapters at the host service's edge: disk, HTTP to the backend, child processes."""
