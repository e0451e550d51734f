"""What the templates API takes and answers."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Self

from pydantic import BaseModel, ConfigDict, Field, model_validator

from messaging_whatsapp.providers.meta_cloud.templates import TemplateCategory
from messaging_whatsapp.templates.models import MessageTemplateRow


class TemplateCreate(BaseModel):
    """A template for a simulator number: its body text ({{1}}..{{n}} placeholders) or components."""

    model_config = ConfigDict(extra="forbid")

    instance_id: str = Field(min_length=1, max_length=36)
    name: str = Field(min_length=1, max_length=512)
    language: str = Field(default="pt_BR", min_length=2, max_length=16)
    category: TemplateCategory = TemplateCategory.UTILITY
    body: str | None = Field(default=None, min_length=1, max_length=1024)
    components: list[dict[str, Any]] | None = Field(default=None, min_length=1, max_length=10)

    @model_validator(mode="after")
    def _body_or_components(self) -> Self:
        if (self.body is None) == (self.components is None):
            raise ValueError("give exactly one of body or components")
        return self


class TemplateItem(BaseModel):
    """A stored template, with the numbers that may send it."""

    id: str
    name: str
    language: str
    status: str
    category: str
    source: str
    scope: str
    instance_ids: list[str]
    body: str
    parameter_names: list[str]
    parameter_count: int
    components: list[dict[str, Any]]
    meta_template_id: str | None
    synced_at: datetime | None
    updated_at: datetime

    @classmethod
    def of(cls, row: MessageTemplateRow, instance_ids: list[str]) -> Self:
        """The item for a row, with the ids of the numbers of its scope."""
        return cls(
            id=row.id,
            name=row.name,
            language=row.language,
            status=row.status,
            category=row.category,
            source=row.source,
            scope=row.scope,
            instance_ids=instance_ids,
            body=row.body,
            parameter_names=list(row.parameter_names),
            parameter_count=row.parameter_count,
            components=list(row.components),
            meta_template_id=row.meta_template_id,
            synced_at=row.synced_at,
            updated_at=row.updated_at,
        )


class NumberSync(BaseModel):
    """What the sync did for one Meta number (numbers sharing a WABA share its counts)."""

    instance_id: str
    name: str
    display_number: str
    waba_id: str | None
    added: int = 0
    updated: int = 0
    removed: int = 0
    error: str | None = None


class SyncResult(BaseModel):
    """The sync's totals (each WABA counted once) and each number's outcome."""

    added: int = 0
    updated: int = 0
    removed: int = 0
    numbers: list[NumberSync] = Field(default_factory=list)

    @property
    def errors(self) -> list[NumberSync]:
        """The numbers whose templates could not be read."""
        return [number for number in self.numbers if number.error is not None]
