"""Request bodies of the API: strict (an unknown field is refused, naming it) and bounded.

The limits are `domain.inputs`' (the service layer checks the same for every face); here
they are declared so the OpenAPI states them and a bad body is refused before any work.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field

from infrastream.domain.inputs import MAX_NAME, MAX_TEXT, NAME_PATTERN, unstorable


def _storable(value: str) -> str:
    problem = unstorable(value)
    if problem:
        raise ValueError(problem)
    return value


Storable = Annotated[str, AfterValidator(_storable)]
"""Any text the database can store (no NUL, no lone surrogate)."""
Name = Annotated[str, Field(min_length=1, max_length=MAX_NAME, pattern=NAME_PATTERN,
                            description="A DNS label: lowercase letters, digits and `-`"),
                 AfterValidator(_storable)]
Text = Annotated[str, Field(max_length=MAX_TEXT), AfterValidator(_storable)]
"""Free text (comments, reasons): at most 4096 characters."""
Reason = Annotated[str, Field(min_length=1, max_length=MAX_TEXT), AfterValidator(_storable)]
Short = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_storable)]
RoleName = Annotated[str, Field(min_length=1, max_length=MAX_NAME,
                                pattern=r"^[a-z0-9][-a-z0-9]*$",
                                description="A built-in role or one a manifest declares"),
                     AfterValidator(_storable)]
Commit = Annotated[str, Field(min_length=4, max_length=64, pattern=r"^[A-Za-z0-9]+$")]


class Body(BaseModel):
    """Base of every request body: an unknown field is an error, never silently dropped."""

    model_config = ConfigDict(extra="forbid")


Email = Annotated[str, Field(min_length=3, max_length=254, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$",
                             examples=["alice@example.com"]), AfterValidator(_storable)]


class UserCreate(Body):
    name: Name = Field(examples=["alice"])
    roles: list[RoleName] = Field(min_length=1, max_length=16, examples=[["qa"]])
    email: Email | None = Field(None, description="Where notifications mail the user")


class UserEmail(Body):
    email: Email | None = Field(description="The address notifications mail the user at; "
                                "null clears it")


class TokenCreate(Body):
    user: Name | None = Field(None, description="Whose token (default: the caller's own)")
    name: Name | None = Field(None, description="What the token is for, e.g. `ci`")
    expires: Annotated[str, Field(pattern=r"^\d{1,4}[dhms]([0-9]{1,4}[hms]){0,3}$",
                                  max_length=20)] | None = Field(
        None, description="Lifetime such as `90d` or `12h` (at most 365d); default: never",
        examples=["90d"])


class ManifestSource(Body):
    source: Short = Field(description="File name the text came from (used in diagnostics)")
    text: Annotated[str, Field(max_length=4 * 1024 * 1024), AfterValidator(_storable)]


class ApplyRequest(Body):
    sources: list[ManifestSource] = Field(min_length=1, max_length=1000)
    sourceRoot: Short | None = Field(
        None, description="Absolute directory relative run/test commands resolve against "
        "(the local target)")


class VersionRecord(Body):
    image: Short = Field(examples=["registry.example.com/shop/api:1.4.2"])
    commit: Commit | None = None


class ReleaseCreate(Body):
    applicationSet: Name
    name: Name | None = None
    forwardPortOverride: Reason | None = Field(
        None, description="Reason to cut a release that would roll back a hotfix")


class HotfixCreate(Body):
    applicationSet: Name
    apps: dict[Name, Short] = Field(min_length=1, max_length=100,
                                    description="Application → hotfix image",
                                    examples=[{"api": "registry.example.com/shop/api:1.4.2-hf1"}])
    incident: Reason = Field(examples=["INC-4711"])
    name: Name | None = None


class PromotionCreate(Body):
    forwardPortOverride: Reason | None = Field(
        None, description="Reason to enter production although a hotfix would be rolled back")
    freezeOverride: Reason | None = Field(
        None, description="Reason to promote through a freeze window (override role only)")


class RollbackCreate(Body):
    to: Annotated[str, Field(max_length=2 * MAX_NAME + 1, pattern=r"^[^/]+/[^/]+$"),
                  AfterValidator(_storable)] | None = Field(
        None, description="SET/NAME; default: the newest release that succeeded there before "
        "and was not rolled back from there")
    reason: Reason = Field(description="Why (shown to everyone and audited)")


class TeardownCreate(Body):
    reason: Reason = Field(description="Why (audited)")


class BindingSet(Body):
    node: Name = Field(description="The node (server name) to run the environment from now on")


class PreReleaseCreate(Body):
    application: Name
    image: Short
    ref: Annotated[str, Field(min_length=1, max_length=200), AfterValidator(_storable)] = Field(
        examples=["pull/17"])
    commit: Commit | None = None


class ApprovalCreate(Body):
    role: RoleName | None = None
    comment: Text = ""


class AbandonRequest(Body):
    reason: Reason = Field(description="Why (shown to everyone and audited)")


class RejectionCreate(Body):
    reason: Reason


class SecretValue(Body):
    value: Annotated[str, Field(min_length=1, max_length=64 * 1024),
                     AfterValidator(_storable)] = Field(
        description="Stored encrypted; never returned")
