"""The OpenID client against a real provider (oidc-provider under Node): discovery, the code
flow with PKCE, state and nonce, the ID token's groups, and refusals end to end."""

from __future__ import annotations

from urllib.parse import parse_qs, urlparse

import httpx
import pytest

from infrastream.domain.errors import Unauthenticated
from infrastream.domain.sign_in import check_state
from infrastream.oidc.client import ClientSettings, Provider
from infrastream.store.clock import now

from .conftest import CLIENT, SECRET, OpenIdProvider, log_in_through_provider


def _provider(op: OpenIdProvider, client_id: str = CLIENT) -> Provider:
    return Provider(ClientSettings(issuer=op.issuer, client_id=client_id, client_secret=SECRET))


def test_code_flow_with_pkce_yields_the_person_and_their_groups(
        openid_provider: OpenIdProvider) -> None:
    provider = _provider(openid_provider)
    started = provider.start(openid_provider.cli_callback)
    with httpx.Client() as browser:
        back = log_in_through_provider(browser, started.url, "ada")
    query = parse_qs(urlparse(back.headers["location"]).query)
    check_state(started.state, query["state"][0])
    person = provider.finish(started.nonce, started.verifier, query["code"][0],
                             openid_provider.cli_callback, now())
    assert (person.name, person.groups) == ("ada", ("qa-engineers",))


def test_a_wrong_nonce_and_a_wrong_state_are_refused_end_to_end(
        openid_provider: OpenIdProvider) -> None:
    provider = _provider(openid_provider)
    started = provider.start(openid_provider.cli_callback)
    with httpx.Client() as browser:
        back = log_in_through_provider(browser, started.url, "omar")
    query = parse_qs(urlparse(back.headers["location"]).query)
    with pytest.raises(Unauthenticated, match="wrong state"):
        check_state("another-sign-in", query["state"][0])
    with pytest.raises(Unauthenticated, match="wrong nonce"):
        provider.finish("not-the-nonce", started.verifier, query["code"][0],
                        openid_provider.cli_callback, now())


def test_a_code_without_its_pkce_verifier_is_refused(openid_provider: OpenIdProvider) -> None:
    provider = _provider(openid_provider)
    started = provider.start(openid_provider.cli_callback)
    with httpx.Client() as browser:
        back = log_in_through_provider(browser, started.url, "ada")
    code = parse_qs(urlparse(back.headers["location"]).query)["code"][0]
    with pytest.raises(Unauthenticated, match="invalid_grant"):
        provider.finish(started.nonce, "x" * 64, code, openid_provider.cli_callback, now())
