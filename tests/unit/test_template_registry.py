"""Seed 001's template registry: its snippet works verbatim, lookups, and Meta's naming rules."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from pydantic import ValidationError

from messaging_whatsapp.providers.meta_cloud.management import placeholders
from messaging_whatsapp.providers.meta_cloud.templates import (
    MessageTemplate,
    TemplateComponent,
    TemplateParameter,
    template_registry,
)


@pytest.fixture(autouse=True)
def clean_registry() -> Iterator[None]:
    before = {(t.name, t.language) for t in template_registry.all()}
    yield
    for template in template_registry.all():
        if (template.name, template.language) not in before:
            template_registry.unregister(template.name, template.language)


def test_the_seed_snippet_works_verbatim() -> None:
    from messaging_whatsapp.providers.meta_cloud.templates import MessageTemplate, template_registry

    template_registry.register(MessageTemplate(
        name="meu_template",
        language="pt_BR",
        category="UTILITY",
        components=[
            TemplateComponent(
                type="body",
                parameters=[
                    TemplateParameter(name="customer_name"),
                    TemplateParameter(name="order_number"),
                ]
            )
        ]
    ))  # fmt: skip

    found = template_registry.get("meu_template", "pt_BR")
    assert found is not None
    assert (found.name, found.language, found.category) == ("meu_template", "pt_BR", "UTILITY")
    assert found.parameter_names == ["customer_name", "order_number"]
    assert template_registry.parameter_names("meu_template", "pt_BR") == ["customer_name", "order_number"]
    assert found.body_text == "{{1}} {{2}}"
    assert found in template_registry.all()
    assert ("meu_template", "pt_BR") in template_registry


def test_lookups_by_name_and_language() -> None:
    template_registry.register(MessageTemplate(name="aviso", language="pt_BR"))
    english = template_registry.register(
        MessageTemplate(
            name="aviso",
            language="en_US",
            category="MARKETING",
            components=[
                TemplateComponent(type="BODY", text="Hi {{1}}", parameters=[TemplateParameter(name="n")])
            ],
        )
    )
    assert template_registry.get("aviso", "en_US") is english
    assert template_registry.get("aviso", "es") is None
    assert template_registry.parameter_names("aviso", "pt_BR") == []
    with pytest.raises(KeyError, match="aviso \\(es\\) is not registered"):
        template_registry.require("aviso", "es")
    # Registering the same name and language again replaces it.
    template_registry.register(MessageTemplate(name="aviso", language="en_US", category="UTILITY"))
    assert template_registry.require("aviso", "en_US").category == "UTILITY"


@pytest.mark.parametrize(
    ("fields", "problem"),
    [
        ({"name": "Meu Template"}, "lowercase letters, digits and underscores"),
        ({"name": "pedido-confirmado"}, "lowercase letters, digits and underscores"),
        ({"name": "ok", "language": "portugues"}, "pt_BR"),
        ({"name": "ok", "category": "TRANSACTIONAL"}, "category"),
        ({"name": "ok", "components": [{"type": "CAROUSEL_X"}]}, "type"),
        ({"name": "ok", "components": [{"type": "body"}, {"type": "BODY"}]}, "at most one"),
        ({"name": "ok", "components": [{"type": "body", "parameters": [{"name": "Nome"}]}]}, "parameter"),
    ],
)
def test_meta_rules_are_enforced(fields: dict[str, object], problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        MessageTemplate.model_validate(fields)


def test_placeholders_are_read_in_order_once() -> None:
    assert placeholders("Olá {{1}}, seu pedido {{2}} chegou. {{1}}!") == ["1", "2"]
    assert placeholders("Olá {{ customer_name }}") == ["customer_name"]
    assert placeholders("sem nada") == []
