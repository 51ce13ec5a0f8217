"""GET /error_codes and /error_codes/{code}: the table of EMQX API error codes."""
from __future__ import annotations

from enum import Enum

from fastapi import APIRouter, Path

from emqpy.api.errors import ERROR_CODES, error_responses

router = APIRouter(tags=["Error Codes"])

ErrorCode = Enum("ErrorCode", {c: c for c, _ in ERROR_CODES}, type=str)
_DESCRIPTIONS = dict(ERROR_CODES)
_ITEM = {"type": "object", "properties": {"code": {"type": "string", "description": "Code Name"},
                                          "description": {"type": "string"}}}


@router.get("/error_codes", summary="API Error Codes",
            description="All error codes the API can return, with their meaning.",
            responses={200: {"description": "The error codes",
                             "content": {"application/json": {
                                 "schema": {"type": "array", "items": _ITEM}}}}})
async def list_error_codes():
    return [{"code": c, "description": d} for c, d in ERROR_CODES]


@router.get("/error_codes/{code}", summary="API Error Code",
            description="The meaning of one error code.",
            responses={200: {"description": "The error code",
                             "content": {"application/json": {"schema": _ITEM}}},
                       **error_responses({400: ["BAD_REQUEST"]})})
async def get_error_code(code: ErrorCode = Path(description="API Error Codes",
                                                examples=["BAD_USERNAME_OR_PWD"])):
    return {"code": code.value, "description": _DESCRIPTIONS[code.value]}
