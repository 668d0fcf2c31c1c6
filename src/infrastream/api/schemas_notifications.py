"""Request bodies of the notification routes (responses are the service layer's views)."""

from __future__ import annotations

from pydantic import Field

from .schemas import Body


class ChannelCreate(Body):
    kind: str = Field(max_length=16, examples=["slack"],
                      description="slack, teams, email or webhook")
    name: str = Field(max_length=63, examples=["releases"])
    webhookUrl: str | None = Field(None, max_length=2000, description=(
        "slack, teams: the incoming webhook URL (a secret: stored encrypted, never returned)"))
    url: str | None = Field(None, max_length=2000, description="webhook: where to POST")
    secret: str | None = Field(None, max_length=500, description=(
        "webhook: the signing secret (`whsec_<base64>` or any text of 16 bytes or more; "
        "stored encrypted, never returned)"))
    smtpHost: str | None = Field(None, max_length=253, description="email: the SMTP server")
    smtpPort: int | None = Field(None, ge=1, le=65535, description="email [default: 25]")
    from_: str | None = Field(None, alias="from", max_length=320,
                              description="email: the sender address")
    to: list[str] | None = Field(None, max_length=100, description=(
        "email: addresses that get every notification (beside the notification's own "
        "recipients)"))
    username: str | None = Field(None, max_length=320, description="email: SMTP login")
    password: str | None = Field(None, max_length=500, description=(
        "email: SMTP password (stored encrypted, never returned)"))
    starttls: bool | None = Field(None, description="email: upgrade with STARTTLS")

    def settings(self) -> dict[str, object]:
        """The channel settings, as the adapters name them."""
        return {"webhook_url": self.webhookUrl, "url": self.url, "secret": self.secret,
                "smtp_host": self.smtpHost, "smtp_port": self.smtpPort, "from": self.from_,
                "to": self.to, "username": self.username, "password": self.password,
                "starttls": self.starttls}
