"""Connections by provider type: validated settings that never show a secret."""

from __future__ import annotations

import pytest
from scm_payloads import REPOSITORY, WEBHOOK_SECRET

from infrastream.domain.errors import Invalid, PermanentError
from infrastream.scm import (
    CommitStatus,
    GitHubConfig,
    GitHubProvider,
    GitLabConfig,
    GitLabProvider,
    ScmRegistry,
    StatusState,
)
from infrastream.scm.fake_github import FakeGitHub

TOKEN = "ghp_t0k3nValueThatMustNeverBePrinted"


def test_both_providers_are_registered_by_name() -> None:
    assert ScmRegistry().type_names == ("github", "gitlab")


def test_a_github_connection_defaults_to_github_com() -> None:
    config = ScmRegistry().parse_config(
        {"type": "github", "token": TOKEN, "webhook_secret": WEBHOOK_SECRET})
    assert isinstance(config, GitHubConfig)
    assert config.base_url == "https://api.github.com" and config.web_url == "https://github.com"
    assert not config.uses_app


def test_a_github_enterprise_connection_links_people_to_its_web_host() -> None:
    config = GitHubConfig(base_url="https://ghe.example.com/api/v3", token=TOKEN,
                          webhook_secret=WEBHOOK_SECRET)
    assert config.web_url == "https://ghe.example.com"


def test_a_self_managed_gitlab_is_reached_below_api_v4() -> None:
    config = ScmRegistry().parse_config({"type": "gitlab", "base_url": "https://git.example.com/",
                                         "token": TOKEN, "webhook_secret": WEBHOOK_SECRET})
    assert isinstance(config, GitLabConfig)
    assert config.api_url == "https://git.example.com/api/v4"
    assert isinstance(ScmRegistry().build(config), GitLabProvider)


@pytest.mark.parametrize("config", [
    GitHubConfig(token=TOKEN, webhook_secret=WEBHOOK_SECRET, app_id=1, private_key=TOKEN),
    GitLabConfig(token=TOKEN, webhook_secret=WEBHOOK_SECRET),
], ids=["github", "gitlab"])
def test_connection_settings_never_print_their_secrets(config: GitHubConfig | GitLabConfig) -> None:
    for shown in (repr(config), str(config), config.model_dump_json(), repr(config.model_dump())):
        assert TOKEN not in shown and WEBHOOK_SECRET not in shown
    assert config.token is not None and config.token.get_secret_value() == TOKEN


def test_wrong_settings_name_every_field_without_echoing_values() -> None:
    with pytest.raises(Invalid) as wrong:
        ScmRegistry().parse_config({"type": "gitlab", "token": TOKEN, "timeout": -1,
                                    "colour": "blue"})
    text = str(wrong.value)
    assert "webhook_secret" in text and "timeout" in text and "colour" in text
    assert TOKEN not in text and TOKEN not in repr(wrong.value.details)


def test_an_unknown_provider_type_names_the_known_ones() -> None:
    with pytest.raises(Invalid, match="available: github, gitlab"):
        ScmRegistry().parse_config({"type": "bitbucket"})


def test_a_github_connection_needs_a_token_or_an_app() -> None:
    with pytest.raises(PermanentError, match="needs a token or a GitHub App"):
        GitHubProvider(GitHubConfig(webhook_secret=WEBHOOK_SECRET))


def test_a_built_provider_reports_through_the_connection_it_was_given() -> None:
    with FakeGitHub(repositories=[REPOSITORY]) as github:
        registry = ScmRegistry()
        provider = registry.build(registry.parse_config({
            "type": "github", "base_url": github.base_url, "token": github.token,
            "webhook_secret": WEBHOOK_SECRET}))
        assert provider.type_name == "github"
        provider.report_status(REPOSITORY, "a" * 40, CommitStatus(StatusState.SUCCESS, "passed"))
        assert github.statuses(REPOSITORY, "a" * 40)[0]["state"] == "success"
