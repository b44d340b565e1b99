"""Reading an operation's log from the backend page by page: all of it, its last lines, or live.

``GET /api/v1/operations/{id}/logs`` answers at most ``limit`` lines (the server allows 1..5000) from
``offset``; a page shorter than asked for means the log has no more lines for now.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable, Iterator

from backend.cli.backend_client import BackendClient
from backend.cli.remote_training import TERMINAL_STATUSES
from shared.contracts.operations import LogLine, OperationView

#: Lines asked for per request (the server's default page; its maximum is 5000).
LOG_PAGE_LINES = 1000


class LogReader:
    """Reads one operation's log from ``offset`` on, remembering where it stopped."""

    def __init__(
        self, client: BackendClient, operation_id: str, *, offset: int = 0, page_lines: int = LOG_PAGE_LINES
    ) -> None:
        self.client = client
        self.operation_id = operation_id
        self.offset = offset
        self.page_lines = page_lines
        #: The server said it dropped lines of this log (its store keeps a bounded number).
        self.truncated = False

    def read_available(self) -> Iterator[LogLine]:
        """Every line logged so far past ``offset``, requesting page after page until one comes back short."""
        while True:
            page = self.client.operation_logs(self.operation_id, offset=self.offset, limit=self.page_lines)
            self.truncated = self.truncated or page.truncated
            self.offset = max(self.offset, page.next_offset)
            yield from page.lines
            if len(page.lines) < self.page_lines:
                return

    def last(self, count: int) -> list[LogLine]:
        """The last ``count`` lines logged so far (the earlier pages are read and dropped)."""
        return list(deque(self.read_available(), maxlen=count))

    def follow(
        self,
        show: Callable[[LogLine], None],
        *,
        interval_s: float,
        sleep: Callable[[float], None] = time.sleep,
    ) -> OperationView:
        """Show new lines as they are logged until the operation ends; returns it as it ended."""
        while True:
            # Status first: every line logged before the operation ended is read just below.
            op = self.client.get_operation(self.operation_id)
            for line in self.read_available():
                show(line)
            if op.status in TERMINAL_STATUSES:
                return op
            sleep(interval_s)
