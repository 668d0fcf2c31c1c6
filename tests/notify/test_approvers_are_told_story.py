"""The issue's story, end to end and from outside: a platform engineer sets up a Slack channel
and a mail channel with the CLI against a real `serve` process and subscribes both to what
concerns QA; a release is promoted into a stage that needs QA's sign-off; the QA engineer's
Slack channel (a real HTTP receiver on loopback) and mailbox (a real SMTP server, aiosmtpd)
get a message with the release, the stage, what it waits for and the link to approve, with no
poll interval to wait out; the QA engineer approves and nobody is told again. A mail server
that was down when the promotion started waiting gets the message once it is back."""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from email import message_from_bytes
from email.message import Message
from pathlib import Path
from typing import Any

from aiosmtpd.controller import Controller
from receivers import HttpReceiver

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "engine"))

from servers import Server, apply, signing_key, users, wait_for
from story import example_repo

from infrastream.store.database import sqlite_url

PUBLIC_URL = "https://infra.example.com"


class Mailbox:
    def __init__(self) -> None:
        self.mails: list[tuple[list[str], Message]] = []

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        self.mails.append((list(envelope.rcpt_tos), message_from_bytes(envelope.content)))
        return "250 OK"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _cli(server: Server, token: str, *args: str, env: dict[str, str] | None = None
         ) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "infrastream.cli.main", *args, "--server", server.url,
         "--token", token], capture_output=True, text=True, timeout=120,
        env={**server.env, **(env or {})})


def _until(condition: Any, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        time.sleep(0.05)


def _repo(tmp_path: Path) -> Path:
    repo = example_repo(tmp_path, target="noop")
    track = repo / "manifests" / "track.yaml"
    staging = """    - environments:
        - staging
      checks:"""
    text = track.read_text()
    assert staging in text
    track.write_text(text.replace(staging, """    - environments:
        - staging
      approvals:
        - role: qa
      checks:"""))
    return repo


def test_the_qa_engineer_is_told_on_slack_and_by_mail_when_a_promotion_waits_for_qa(
        tmp_path: Path) -> None:
    slack = HttpReceiver().start()
    mailbox = Mailbox()
    smtp_port = _free_port()
    smtp: Controller | None = None
    server = Server(tmp_path / "a", sqlite_url(tmp_path / "a"), node="node-a",
                    key=signing_key(), args=["--public-url", PUBLIC_URL])
    try:
        server.start()
        admin = server.client(server.admin_token())
        tokens = users(admin)
        admin.post("/users", json={"name": "quill", "roles": ["qa"],
                                   "email": "quill@example.com"}).raise_for_status()
        admin.put("/users/quinn/email", json={"email": "quinn@example.com"}).raise_for_status()

        webhook = slack.url("/services/T00/B00/secret-part")
        added = _cli(server, tokens["pat"], "notifications", "channel", "add", "slack",
                     "qa-slack", "--webhook-url-env", "QA_SLACK_URL",
                     env={"QA_SLACK_URL": webhook})
        assert added.returncode == 0, added.stderr
        assert "secret-part" not in added.stdout + added.stderr
        added = _cli(server, tokens["pat"], "notifications", "channel", "add", "email",
                     "qa-mail", "--smtp-host", "127.0.0.1", "--smtp-port", str(smtp_port),
                     "--from", "infrastream@example.com")
        assert added.returncode == 0, added.stderr
        for channel in ("qa-slack", "qa-mail"):
            made = _cli(server, tokens["pat"], "notifications", "subscribe", channel,
                        "--role", "qa")
            assert made.returncode == 0, made.stderr
        listed = _cli(server, tokens["pat"], "notifications", "channel", "list", "-o", "json")
        assert listed.returncode == 0 and "secret-part" not in listed.stdout

        apply(server.client(tokens["pat"]), _repo(tmp_path))
        ci = server.client(tokens["ci"])
        for app in ("api", "web", "worker"):
            ci.post(f"/applications/{app}/versions", json={
                "image": f"registry.example.com/shop/{app}:1.0.0"}).raise_for_status()
        rita = server.client(tokens["rita"])
        rita.post("/releases", json={"applicationSet": "shop"}).raise_for_status()
        wait_for(rita, "/releases/shop/v1", lambda s: s["stages"][0]["state"] == "succeeded")
        assert slack.requests == []  # nothing waits for QA yet: nobody is told

        rita.post("/releases/shop/v1/promotions", json={}).raise_for_status()
        _until(lambda: len(slack.requests) == 1, "the Slack message")
        message = slack.requests[0]
        assert message.path == "/services/T00/B00/secret-part"
        text = message.body.decode()
        assert "shop/v1 waits for qa in staging" in text
        assert "qa 0/1" in text  # the blocker list, as `release status` words it
        assert f"{PUBLIC_URL}/portal/releases/shop/v1" in text

        # The mail server was down: the delivery is retried and shown as pending meanwhile.
        _until(lambda: "qa-mail" in _cli(server, tokens["pat"], "notifications", "deliveries",
                                         "--outcome", "pending").stdout, "a pending mail")
        pending = _cli(server, tokens["pat"], "notifications", "deliveries", "--outcome",
                       "pending", "-o", "json")
        assert pending.returncode == 0, pending.stderr
        [waiting_mail] = json.loads(pending.stdout)
        assert waiting_mail["channel"] == "qa-mail" and waiting_mail["attempts"] >= 1
        assert "is unreachable" in waiting_mail["lastError"]
        smtp = Controller(mailbox, hostname="127.0.0.1", port=smtp_port)
        smtp.start()
        _until(lambda: len(mailbox.mails) == 1, "the mail after the server came back",
               timeout=90)
        recipients, mail = mailbox.mails[0]
        assert sorted(recipients) == ["quill@example.com", "quinn@example.com"]
        assert "shop/v1 waits for qa in staging" in str(mail["Subject"])
        body = "".join(str(part.get_payload(decode=True), "utf-8") for part in mail.walk()
                       if part.get_content_type() == "text/plain")
        assert f"{PUBLIC_URL}/portal/releases/shop/v1" in body and "qa 0/1" in body

        server.client(tokens["quinn"]).post("/releases/shop/v1/approvals",
                                            json={}).raise_for_status()
        wait_for(rita, "/releases/shop/v1", lambda s: s["stages"][1]["state"] in (
            "deploying", "verifying", "succeeded"))
        delivered = _cli(server, tokens["pat"], "notifications", "deliveries", "-o", "json")
        assert delivered.returncode == 0, delivered.stderr
        assert sorted((d["channel"], d["outcome"]) for d in json.loads(delivered.stdout)) == [
            ("qa-mail", "delivered"), ("qa-slack", "delivered")]
        assert len(slack.requests) == 1 and len(mailbox.mails) == 1  # told once
    finally:
        server.stop()
        slack.stop()
        if smtp is not None:
            smtp.stop()
