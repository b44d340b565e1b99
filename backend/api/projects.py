"""Projects: the operations of each project counted by status, and when each project was last active."""

from __future__ import annotations

from fastapi import APIRouter

from backend.api.dependencies import OperationsDep
from backend.api.views import project_view
from shared.contracts.operations import ProjectList

router = APIRouter(prefix="/api/v1/projects", tags=["projects"])


@router.get("", response_model=ProjectList)
def list_projects(operations: OperationsDep) -> ProjectList:
    """Every project that has an operation, the most recently active first. A project exists as soon
    as a training names it (``project`` of ``POST /api/v1/trainings``; ``default`` when none is given)."""
    return ProjectList(items=[project_view(s) for s in operations.project_summaries()])
