"""Use cases of the host service: claim capacity, run sessions, hand results off."""
