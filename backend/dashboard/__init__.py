"""The training dashboard: one offline page (hand-written HTML, CSS and JS modules) served at ``/``."""

from backend.dashboard.router import router

__all__ = ["router"]
