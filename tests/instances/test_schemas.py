"""A gateway's base URL is checked when a number is bound: http or https with a readable host."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from messaging_whatsapp.instances.schemas import InstanceBind, checked_api_url


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "gopher://evo.example.com:70/_SET",
        "ftp://evo.example.com",
        "http://",
        "http://0177.0.0.1:8080",  # octal: httpx cannot read it, glibc would call loopback
        "evo.example.com",
    ],
)
def test_a_url_that_is_not_http_with_a_host_is_refused_at_binding(url: str) -> None:
    with pytest.raises(ValidationError) as refused:
        InstanceBind(provider="evolution", display_number="+5511940028922", instance_name="loja", api_url=url)
    assert "api_url" in str(refused.value)


def test_a_good_url_is_kept_without_its_trailing_slash() -> None:
    assert checked_api_url(" https://evo.example.com/api/ ") == "https://evo.example.com/api"
    bind = InstanceBind(
        provider="wuzapi",
        display_number="+5511940028922",
        instance_name="loja",
        api_url="http://10.0.0.5:8080/",
    )
    assert bind.api_url == "http://10.0.0.5:8080"
