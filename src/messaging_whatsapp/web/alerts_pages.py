"""The alerts pages (placeholder: filled by the change that builds them)."""

from fastapi import APIRouter

router = APIRouter(include_in_schema=False)
