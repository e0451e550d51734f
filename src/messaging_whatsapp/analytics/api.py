"""HTTP routes (placeholder: filled by the change that builds this domain)."""

from fastapi import APIRouter

router = APIRouter()
