"""Per-token limits: requests per minute (429), jobs at once (429), samples per request and upload size
(413). Each refusal is a one-line message that says the limit and what to do.

The request counter lives in each server process (a sliding window of one minute); with several server
processes behind a balancer each counts its own share.
"""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque

from fastapi import HTTPException
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from genforge.app.serve.auth import User
from genforge.app.serve.models import ACTIVE, Job


class TooMany(HTTPException):
    def __init__(self, message: str, retry_after: int | None = None):
        super().__init__(429, message, headers={"Retry-After": str(retry_after)} if retry_after else None)


class TooLarge(HTTPException):
    def __init__(self, message: str):
        super().__init__(413, message)


class RateLimiter:
    """Requests per minute per token, over a sliding window."""

    def __init__(self):
        self._seen: dict[int, deque] = defaultdict(deque)
        self._lock = threading.Lock()

    def check(self, user: User) -> None:
        t = time.monotonic()
        with self._lock:
            seen = self._seen[user.id]
            while seen and t - seen[0] >= 60:
                seen.popleft()
            if len(seen) >= user.limits.rpm:
                wait = int(60 - (t - seen[0])) + 1
                raise TooMany(f"too many requests: this token may make {user.limits.rpm} per minute; wait {wait} s "
                              f"and try again, or ask an admin for a higher limit", retry_after=wait)
            seen.append(t)


def check_jobs(s: Session, user: User) -> None:
    active = s.scalar(select(func.count()).select_from(Job).where(Job.owner_id == user.id, Job.state.in_(ACTIVE)))
    if active >= user.limits.max_jobs:
        raise TooMany(f"this token already has {active} jobs queued or running (its limit is {user.limits.max_jobs}); "
                      f"wait for one to finish or cancel one")


def check_samples(user: User, n: int) -> None:
    if n > user.limits.max_samples:
        raise TooLarge(f"{n:,} samples in one request is more than this token's limit of "
                       f"{user.limits.max_samples:,}; ask for fewer (several requests, or a smaller n)")


def upload_limit(user: User) -> int:
    return int(user.limits.max_upload_mb * 2**20)
