"""Pure domain of the host service: the session state machine and the ports adapters implement."""
