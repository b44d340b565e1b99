"""HTTP routers of the host service: parse, call a service, return a contract."""
