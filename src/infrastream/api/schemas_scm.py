"""Request bodies of the SCM routes (responses are the service layer's typed views)."""

from __future__ import annotations

from pydantic import Field

from .schemas import Body

INT32 = 2**31 - 1


class ConnectionCreate(Body):
    type: str = Field(max_length=16, examples=["github"], description="github or gitlab")
    name: str = Field(max_length=63, examples=["github"],
                      description="How Applications' `source.scm` name it")
    token: str | None = Field(None, description="API token (stored encrypted, never returned); "
                              "GitHub Apps use appId and privateKey instead")
    webhookSecret: str = Field(min_length=1, description="The webhook's secret (stored "
                               "encrypted, never returned)")
    baseUrl: str | None = Field(None, examples=["https://gitlab.example.com"],
                                description="API root [default: github.com / gitlab.com]")
    publicUrl: str | None = Field(None, description="Where people open this server (statuses "
                                  "link to its Portal) [default: the URL this request used]")
    context: str | None = Field(None, description="Status context [default: "
                                "infrastream/pre-release]")
    appId: int | None = Field(None, ge=1, le=2**63 - 1,
                              description="GitHub App id: report check runs as the App")
    privateKey: str | None = Field(None, description="The GitHub App's PEM private key")
    installationId: int | None = Field(None, ge=1, le=2**63 - 1)


class ProtectRequest(Body):
    repository: str = Field(min_length=1, examples=["octo-org/shop-api"])
    branch: str = Field(min_length=1, examples=["main"])
    connection: str | None = Field(None, description="Default: the connection of the "
                                   "Applications that name the repository")


class PullRequestBuild(Body):
    image: str = Field(examples=["registry.example.com/shop/api:pr-17-ec26c3e"])
    commit: str = Field(min_length=4, max_length=64, description="The pull request's head commit")
    pullRequest: int = Field(ge=1, le=INT32, examples=[17])
