"""Email over SMTP, with the standard library: a text and an HTML alternative.

It goes to the notification's recipients that have an address, plus the fixed addresses of
the channel (`to`), from the channel's `from` address, over plain SMTP, optionally upgraded
with STARTTLS and logged in. The server's answer sorts a failure: a 5xx reply (unknown
mailbox, refused login) will not get better, a 4xx or a dropped connection may.
"""

from __future__ import annotations

import html
import smtplib
import ssl
from collections.abc import Mapping
from dataclasses import dataclass
from email.message import EmailMessage
from email.utils import formatdate, make_msgid, parseaddr
from typing import Any

from infrastream.domain.errors import PermanentError, TransientError
from infrastream.domain.notifications import Notification

from .base import OPEN_LABEL, TIMEOUT, facts, plain_text, text_setting


@dataclass(frozen=True)
class Settings:
    host: str
    port: int
    sender: str
    to: tuple[str, ...] = ()
    username: str = ""
    password: str = ""
    starttls: bool = False


def parse(settings: Mapping[str, Any]) -> Settings:
    host = text_setting(settings, "smtp_host")
    port = settings.get("smtp_port", 25)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 < port < 65536:
        raise PermanentError("`smtp_port` must be a port number")
    sender = _address(text_setting(settings, "from"), "from")
    to = settings.get("to") or []
    if not isinstance(to, list | tuple):
        raise PermanentError("`to` must be a list of addresses")
    username = text_setting(settings, "username", required=False)
    password = text_setting(settings, "password", required=False)
    if password and not username:
        raise PermanentError("a password needs a `username`")
    return Settings(host, port, sender, tuple(_address(str(a), "to") for a in to), username,
                    password, bool(settings.get("starttls", False)))


def public(settings: Settings) -> dict[str, Any]:
    return {"host": f"{settings.host}:{settings.port}", "from": settings.sender,
            "to": list(settings.to), "username": settings.username or None,
            "starttls": settings.starttls}


def recipients(settings: Settings, notification: Notification) -> list[str]:
    found: list[str] = []
    for address in [r.email for r in notification.recipients if r.email] + list(settings.to):
        if address and address.lower() not in (a.lower() for a in found):
            found.append(address)
    return found


def compose(settings: Settings, notification: Notification, to: list[str]) -> EmailMessage:
    mail = EmailMessage()
    mail["Subject"] = notification.title
    mail["From"] = settings.sender
    mail["To"] = ", ".join(to)
    mail["Date"] = formatdate(notification.occurred_at.timestamp())
    mail["Message-ID"] = make_msgid(domain=settings.sender.rpartition("@")[2] or None)
    mail.set_content(plain_text(notification))
    mail.add_alternative(_html(notification), subtype="html")
    return mail


class Channel:
    def __init__(self, settings: Settings) -> None:
        self.settings = settings

    def send(self, notification: Notification) -> str:
        to = recipients(self.settings, notification)
        if not to:
            raise PermanentError("nobody to mail: the notification names no recipient with an "
                                 "address and the channel has no `to` addresses")
        mail = compose(self.settings, notification, to)
        where = f"SMTP server {self.settings.host}:{self.settings.port}"
        try:
            with smtplib.SMTP(self.settings.host, self.settings.port, timeout=TIMEOUT) as smtp:
                if self.settings.starttls:
                    smtp.starttls(context=ssl.create_default_context())
                if self.settings.username:
                    smtp.login(self.settings.username, self.settings.password)
                refused = smtp.send_message(mail, to_addrs=to)
        except smtplib.SMTPRecipientsRefused as exc:
            raise PermanentError(f"{where} refused every recipient: "
                                 f"{_refusals(exc.recipients)}") from None
        except smtplib.SMTPResponseException as exc:
            said = f"{where} answered {exc.smtp_code} {_decode(exc.smtp_error)}"
            if exc.smtp_code >= 500:
                raise PermanentError(said) from None
            raise TransientError(said) from None
        except smtplib.SMTPNotSupportedError as exc:
            raise PermanentError(f"{where}: {exc}") from None
        except (smtplib.SMTPException, OSError) as exc:
            raise TransientError(f"{where} is unreachable: {exc or type(exc).__name__}"
                                 ) from None
        taken = len(to) - len(refused)
        return f"250 accepted for {taken} recipient(s)" + (
            f"; refused {_refusals(refused)}" if refused else "")

    def close(self) -> None:
        return None


def _address(value: str, name: str) -> str:
    _, address = parseaddr(value)
    if "@" not in address or any(c in address for c in " \r\n,"):
        raise PermanentError(f"`{name}` has an address that is not one: {value[:80]}")
    return value


def _html(notification: Notification) -> str:
    e = html.escape
    rows = "".join(f"<tr><th align=\"left\">{e(label)}</th><td>{e(value)}</td></tr>"
                   for label, value in facts(notification))
    parts = [f"<h2>{e(notification.title)}</h2>"]
    if rows:
        parts.append(f"<table>{rows}</table>")
    if notification.waiting_for:
        items = "".join(f"<li>{e(line)}</li>" for line in notification.waiting_for)
        parts.append(f"<p><strong>Waiting for</strong></p><ul>{items}</ul>")
    if notification.link:
        parts.append(f'<p><a href="{e(notification.link)}">{OPEN_LABEL}</a></p>')
    return "<html><body>" + "".join(parts) + "</body></html>"


def _refusals(refused: Mapping[str, tuple[int, bytes]]) -> str:
    return "; ".join(f"{address} ({code} {_decode(text)})"
                     for address, (code, text) in refused.items())


def _decode(value: bytes | str) -> str:
    text = value.decode(errors="replace") if isinstance(value, bytes) else str(value)
    return " ".join(text.split())[:200]
