"""The SCM provider interface: the five things the service layer asks of any Git host.

One instance serves one connection (one GitHub or GitLab account with its token and webhook
secret, see `registry`). Calls are blocking and safe to call from several threads. The
service layer calls them like this:

    delivery = provider.parse_webhook(request.headers, await request.body())
        # Unauthenticated -> 401; Invalid -> 400; delivery.event None -> 202, ignored
    provider.report_status("org/shop-api", sha, CommitStatus(StatusState.PENDING, "queued"))
        # from the outbox; retry TransientError after error.delay, give up on PermanentError
    provider.changed_paths("org/shop-api", 17)      # does this PR touch services/api?
    provider.require_check("org/shop-api", "main")   # `scm protect`; print .instructions
    provider.git_header("org/shop-manifests")        # git fetch over HTTPS as the connection

Failures are sorted by the caller's next move, as for targets and gates:
`TransientError(delay=seconds)` (the host is down, slow or rate-limiting us: try again, not
sooner than `delay`), `PermanentError` (the host refused: bad token, unknown repository,
rejected value; its message is kept), `Unauthenticated` (a delivery's signature or token is
missing or wrong) and `Invalid` (a signed delivery we cannot read). Nothing else escapes,
and no message or repr ever contains the API token or the webhook secret.

`report_status` is idempotent: reporting the same status twice leaves the host as after one
report (the outbox delivers at least once).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Protocol

from .events import Delivery
from .statuses import DEFAULT_CONTEXT, CommitStatus, Protection, StatusReceipt


class ScmProvider(Protocol):
    type_name: str
    """`github` or `gitlab`: the registry's name for this kind of host."""

    def parse_webhook(self, headers: Mapping[str, str], body: bytes) -> Delivery:
        """Verify a delivery against the webhook secret, then read it into our own event.

        `body` must be the raw bytes as received: signatures are computed over them.
        Header names are matched case-insensitively."""
        ...

    def report_status(self, repository: str, sha: str, status: CommitStatus) -> StatusReceipt:
        """Set `status` on commit `sha` of `repository` (GitHub `owner/name`, GitLab path)."""
        ...

    def changed_paths(self, repository: str, number: int) -> tuple[str, ...]:
        """Every path a pull/merge request changes (both sides of a rename), sorted."""
        ...

    def git_header(self, repository: str) -> str:
        """The `http.extraHeader` that lets git fetch `repository` over HTTPS with this
        connection's credentials (`Authorization: Basic …`). Secret: never log it."""
        ...

    def require_check(self, repository: str, branch: str,
                      context: str = DEFAULT_CONTEXT) -> Protection:
        """Make `context` a check that must pass before anything merges into `branch`.

        A token without the right yields `NEEDS_PERSON` with instructions, not an error."""
        ...
