"""Request bodies of the API (responses are the service layer's plain JSON)."""

from __future__ import annotations

from pydantic import BaseModel, Field


class UserCreate(BaseModel):
    name: str = Field(examples=["alice"])
    roles: list[str] = Field(min_length=1, examples=[["qa"]])


class ManifestSource(BaseModel):
    source: str = Field(description="File name the text came from (used in diagnostics)")
    text: str


class ApplyRequest(BaseModel):
    sources: list[ManifestSource] = Field(min_length=1)
    sourceRoot: str | None = Field(
        None, description="Absolute directory relative run/test commands resolve against "
        "(the local target)")


class VersionRecord(BaseModel):
    image: str = Field(examples=["registry.example.com/shop/api:1.4.2"])
    commit: str | None = None


class ReleaseCreate(BaseModel):
    applicationSet: str
    name: str | None = None
    forwardPortOverride: str | None = Field(
        None, description="Reason to cut a release that would roll back a hotfix")


class HotfixCreate(BaseModel):
    applicationSet: str
    apps: dict[str, str] = Field(min_length=1, description="Application → hotfix image",
                                 examples=[{"api": "registry.example.com/shop/api:1.4.2-hf1"}])
    incident: str = Field(min_length=1, examples=["INC-4711"])
    name: str | None = None


class PromotionCreate(BaseModel):
    forwardPortOverride: str | None = Field(
        None, description="Reason to enter production although a hotfix would be rolled back")
    freezeOverride: str | None = Field(
        None, description="Reason to promote through a freeze window (override role only)")


class RollbackCreate(BaseModel):
    to: str | None = Field(None, description="SET/NAME; default: the newest release that "
                           "succeeded there before and was not rolled back from there")
    reason: str = Field(min_length=1, description="Why (shown to everyone and audited)")


class PreReleaseCreate(BaseModel):
    application: str
    image: str
    ref: str = Field(min_length=1, examples=["pull/17"])
    commit: str | None = None


class ApprovalCreate(BaseModel):
    role: str | None = None
    comment: str = ""


class AbandonRequest(BaseModel):
    reason: str = Field(min_length=1, description="Why (shown to everyone and audited)")


class RejectionCreate(BaseModel):
    reason: str = Field(min_length=1)


class SecretValue(BaseModel):
    value: str = Field(min_length=1, description="Stored encrypted; never returned")
