"""Who am I, tokens (admins), and the audit log (admins)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from genforge.app.serve import deps
from genforge.app.serve.auth import User, create_token
from genforge.app.serve.models import Audit, Token, now
from genforge.app.serve.schemas import TokenOut, TokenRequest

router = APIRouter(tags=["access"])


def token_out(row: Token, token: str | None = None) -> TokenOut:
    return TokenOut(id=row.id, name=row.name, role=row.role, prefix=row.prefix, limits=row.limits or {},
                    created_at=row.created_at, revoked_at=row.revoked_at, token=token)


@router.get("/me", summary="the calling token: name, role and limits")
def me(u: User = Depends(deps.user)):
    return {"id": u.id, "name": u.name, "role": u.role, "limits": u.limits.model_dump()}


@router.post("/tokens", status_code=201, response_model=TokenOut, summary="create a token (admins); shown once")
def create(req: TokenRequest, request: Request, u: User = Depends(deps.admin), s: Session = Depends(deps.session)):
    from pydantic import ValidationError

    try:
        token, row = create_token(s, req.name, req.role, req.limits)
    except ValidationError as err:
        raise HTTPException(422, f"invalid limits: {err.errors()[0]['msg'].lower()}; the limits are max_jobs, "
                                 f"max_samples, max_upload_mb and rpm") from None
    deps.audit(s, request, "token.create", row.id, name=req.name, role=req.role)
    return token_out(row, token)


@router.get("/tokens", response_model=list[TokenOut], summary="list tokens (admins); never the tokens themselves")
def list_tokens(u: User = Depends(deps.admin), s: Session = Depends(deps.session)):
    return [token_out(r) for r in s.scalars(select(Token).order_by(Token.id))]


@router.delete("/tokens/{token_id}", response_model=TokenOut, summary="revoke a token (admins)")
def revoke(token_id: int, request: Request, u: User = Depends(deps.admin), s: Session = Depends(deps.session)):
    row = s.get(Token, token_id) if 0 < token_id < 2**62 else None
    if row is None:
        raise HTTPException(404, f"no token {token_id}; list them with GET /v1/tokens")
    row.revoked_at = row.revoked_at or now()
    deps.audit(s, request, "token.revoke", row.id, name=row.name)
    return token_out(row)


@router.get("/audit", summary="who did what, newest first (admins)")
def audit(limit: int = 100, u: User = Depends(deps.admin), s: Session = Depends(deps.session)):
    rows = s.scalars(select(Audit).order_by(Audit.id.desc()).limit(max(1, min(limit, 1000))))
    return [{"at": r.at, "actor": r.actor, "action": r.action, "target": r.target, "detail": r.detail,
             "request_id": r.request_id} for r in rows]
