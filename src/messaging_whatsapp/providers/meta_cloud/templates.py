"""Seed 001's message template registry: templates declared in code, by name and language.

    from messaging_whatsapp.providers.meta_cloud.templates import template_registry, MessageTemplate

    template_registry.register(MessageTemplate(
        name="meu_template", language="pt_BR", category="UTILITY",
        components=[TemplateComponent(type="body", parameters=[
            TemplateParameter(name="customer_name"), TemplateParameter(name="order_number")])]))

The registry is what the code knows of a template (its name, language, category and the
parameters its body takes, in order); whether Meta approved it is only known from Meta, so the
templates a tenant may send are the ones stored per number (templates/, synced from Meta or
created for the simulator). A registered template is created for the demo's simulator number and
can be created for any simulator number (templates.service.create_from_registry); sending never
trusts the registry alone.

Validation follows Meta's rules: a name of lowercase letters, digits and underscores (at most 512
characters), a language code such as ``pt_BR`` or ``en``, a category of MARKETING, UTILITY or
AUTHENTICATION, component types HEADER, BODY, FOOTER, BUTTONS (given in any case).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from enum import StrEnum
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, field_validator

# Meta: "Maximum 512 characters. Lowercase alphanumeric characters and underscores only."
NAME_PATTERN = re.compile(r"^[a-z0-9_]{1,512}$")
# A language ("pt") or a language and region ("pt_BR", "en_US"), as Meta's template languages.
LANGUAGE_PATTERN = re.compile(r"^[a-z]{2,3}(_[A-Z]{2})?$")
# A parameter's name: Meta's named parameters are lowercase letters, digits and underscores.
PARAMETER_PATTERN = re.compile(r"^[a-z0-9_]{1,64}$")


class TemplateCategory(StrEnum):
    """Meta's template categories."""

    MARKETING = "MARKETING"
    UTILITY = "UTILITY"
    AUTHENTICATION = "AUTHENTICATION"


class ComponentType(StrEnum):
    """The parts of a template, as Meta's management API names them."""

    HEADER = "HEADER"
    BODY = "BODY"
    FOOTER = "FOOTER"
    BUTTONS = "BUTTONS"


class TemplateParameter(BaseModel):
    """One variable of a component, by the name the code fills it by (and an example for review)."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    example: str | None = None

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not PARAMETER_PATTERN.match(value):
            raise ValueError(f"parameter name {value!r}: use lowercase letters, digits and underscores")
        return value


class TemplateComponent(BaseModel):
    """A header, body, footer or buttons part: its text (with {{1}}.. placeholders) and parameters."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    type: ComponentType
    text: str | None = None
    parameters: list[TemplateParameter] = Field(default_factory=list)

    @field_validator("type", mode="before")
    @classmethod
    def _type(cls, value: Any) -> Any:
        # The send API writes "body", the management API "BODY": both name the same part.
        return value.upper() if isinstance(value, str) else value


class MessageTemplate(BaseModel):
    """A template as the code declares it: name, language, category and components."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: str
    language: str = "pt_BR"
    category: TemplateCategory = TemplateCategory.UTILITY
    components: list[TemplateComponent] = Field(default_factory=list)

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not NAME_PATTERN.match(value):
            raise ValueError(
                f"template name {value!r}: Meta takes lowercase letters, digits and underscores only "
                "(at most 512)"
            )
        return value

    @field_validator("language")
    @classmethod
    def _language(cls, value: str) -> str:
        if not LANGUAGE_PATTERN.match(value):
            raise ValueError(f"language {value!r}: use a code such as pt_BR, en_US or es")
        return value

    @field_validator("category", mode="before")
    @classmethod
    def _category(cls, value: Any) -> Any:
        return value.upper() if isinstance(value, str) else value

    @field_validator("components")
    @classmethod
    def _one_of_each(cls, value: list[TemplateComponent]) -> list[TemplateComponent]:
        kinds = [component.type for component in value]
        if len(kinds) != len(set(kinds)):
            raise ValueError("a template has at most one component of each type")
        return value

    @property
    def body(self) -> TemplateComponent | None:
        """The body component, if the template has one."""
        return next((c for c in self.components if c.type is ComponentType.BODY), None)

    @property
    def parameter_names(self) -> list[str]:
        """The names of the body's parameters, in the order a send gives their values."""
        body = self.body
        return [] if body is None else [parameter.name for parameter in body.parameters]

    @property
    def body_text(self) -> str:
        """The body's text; without one, a placeholder per parameter ({{1}} {{2}} ...)."""
        body = self.body
        if body is None:
            return ""
        if body.text is not None:
            return body.text
        return " ".join(f"{{{{{index}}}}}" for index in range(1, len(body.parameters) + 1))


class TemplateRegistry:
    """Templates declared in code, by (name, language); registering the same key again replaces it."""

    def __init__(self) -> None:
        self._templates: dict[tuple[str, str], MessageTemplate] = {}

    def register(self, template: MessageTemplate) -> MessageTemplate:
        """Add (or replace) a template; returns it, so a module can keep a reference."""
        self._templates[(template.name, template.language)] = template
        return template

    def get(self, name: str, language: str = "pt_BR") -> MessageTemplate | None:
        """The template of this name and language, or None."""
        return self._templates.get((name, language))

    def require(self, name: str, language: str = "pt_BR") -> MessageTemplate:
        """The template of this name and language; KeyError naming the ones registered otherwise."""
        found = self.get(name, language)
        if found is None:
            known = ", ".join(f"{n} ({lang})" for n, lang in sorted(self._templates)) or "none"
            raise KeyError(f"template {name} ({language}) is not registered; registered: {known}")
        return found

    def all(self) -> list[MessageTemplate]:
        """Every registered template, by name then language."""
        return [self._templates[key] for key in sorted(self._templates)]

    def parameter_names(self, name: str, language: str = "pt_BR") -> list[str]:
        """The body parameters the template takes, in order (KeyError when it is not registered)."""
        return self.require(name, language).parameter_names

    def unregister(self, name: str, language: str = "pt_BR") -> None:
        """Forget a template (tests and reloads)."""
        self._templates.pop((name, language), None)

    def __contains__(self, key: object) -> bool:
        return key in self._templates

    def __iter__(self) -> Iterator[MessageTemplate]:
        return iter(self.all())

    def __len__(self) -> int:
        return len(self._templates)


template_registry = TemplateRegistry()

__all__ = [
    "ComponentType",
    "MessageTemplate",
    "TemplateCategory",
    "TemplateComponent",
    "TemplateParameter",
    "TemplateRegistry",
    "template_registry",
]
