"""What every route shares: the settings, a database session, the calling user (401 without a token,
429 past the rate limit), owned rows (another user's answer 404) and the audit log."""

from __future__ import annotations

from typing import Any, Iterator

from fastapi import Depends, HTTPException, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.orm import Session

from genforge.app.serve import db
from genforge.app.serve.auth import COOKIE, User, user_for
from genforge.app.serve.models import Audit, now
from genforge.app.serve.settings import Settings

bearer_scheme = HTTPBearer(auto_error=False, description="a token from 'genforge token create'")
NO_TOKEN = ("missing or unknown token: send 'Authorization: Bearer TOKEN' (an admin makes tokens with "
            "'genforge token create --name NAME')")


def settings(request: Request) -> Settings:
    return request.app.state.settings


def session(request: Request) -> Iterator[Session]:
    with db.session(request.app.state.settings.db_url) as s:
        yield s


def token_of(request: Request, creds: HTTPAuthorizationCredentials | None) -> str | None:
    if creds is not None and creds.scheme.lower() == "bearer":
        return creds.credentials
    return request.cookies.get(COOKIE)


def user(request: Request, creds: HTTPAuthorizationCredentials | None = Depends(bearer_scheme)) -> User:
    token = token_of(request, creds)
    cfg = request.app.state.settings
    with db.session(cfg.db_url) as s:
        found = user_for(s, token, cfg.limits)
    if found is None:
        raise HTTPException(401, NO_TOKEN, headers={"WWW-Authenticate": "Bearer"})
    request.state.user = found
    request.app.state.limiter.check(found)
    return found


def admin(u: User = Depends(user)) -> User:
    if not u.admin:
        raise HTTPException(403, "this needs an admin token; ask an admin")
    return u


def owned(s: Session, model, row_id: str, u: User, what: str):
    """The row ``row_id`` of ``model`` if ``u`` may see it; 404 otherwise (another user's rows do not exist)."""
    row = s.get(model, row_id) if isinstance(row_id, str) and len(row_id) <= 40 else None
    if row is None or (row.owner_id != u.id and not u.admin):
        raise HTTPException(404, f"no {what} '{str(row_id)[:40]}' for this token; list yours with GET /v1/{what}s")
    return row


def audit(s: Session, request: Request, action: str, target: str = "", **detail: Any) -> None:
    u = getattr(request.state, "user", None)
    s.add(Audit(at=now(), token_id=u.id if u else None, actor=u.name if u else "", action=action, target=str(target)[:100],
                detail=detail, request_id=getattr(request.state, "request_id", "")))
