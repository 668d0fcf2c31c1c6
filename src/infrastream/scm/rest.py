"""HTTP calls to a Git host's REST API, with every failure sorted by the caller's next move.

Both providers talk JSON over HTTPS with a token in a header and paginate with `Link`
headers, so they share this small client over httpx: one connection pool per connection,
timeouts on every call, and one place that decides what a failure means.

    network error, timeout, 5xx          TransientError(delay=Retry-After or a default)
    429, or 403 that is a rate limit     TransientError(delay=Retry-After / reset time)
    any other 4xx                        PermanentError with the host's own message

A status the caller can act on (a 403 when asking for a setting, a 404 that means "none
yet") is passed in `accept` and returned as a response instead. The token is only ever
sent in a header, to the configured base URL (a `next` link to another origin is refused),
and every error text is scrubbed of it.
"""

from __future__ import annotations

import email.utils
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import Any

import httpx

from infrastream import __version__
from infrastream.domain.errors import PermanentError, TransientError

USER_AGENT = f"infrastream/{__version__}"
NETWORK_DELAY = 5.0
"""Seconds to wait after a connection failure or a 5xx without Retry-After."""
RATE_LIMIT_DELAY = 60.0
"""Seconds to wait after a rate limit that says nothing about when it ends (GitHub's
guidance for secondary rate limits: at least a minute)."""
MAX_PAGES = 100
MIN_SCRUBBED = 4
"""Shorter secret values are not replaced in texts: they would turn every word into `***`."""


class RestClient:
    def __init__(self, base_url: str, *, host: str, auth: Callable[[], Mapping[str, str]],
                 secrets: Callable[[], Iterable[str]], headers: Mapping[str, str] | None = None,
                 timeout: float = 10.0, transport: httpx.BaseTransport | None = None,
                 clock: Callable[[], float] = time.time) -> None:
        self.base_url = base_url.rstrip("/")
        self.host = host
        """How error messages name the host: `GitHub`, `GitLab`."""
        self._auth = auth
        self._secrets = secrets
        self._clock = clock
        self._client = httpx.Client(
            timeout=httpx.Timeout(timeout), transport=transport, follow_redirects=False,
            headers={"User-Agent": USER_AGENT, **(headers or {})})

    def close(self) -> None:
        self._client.close()

    def request(self, method: str, path: str, *, json: Any = None,
                params: Mapping[str, str | int] | None = None,
                headers: Mapping[str, str] | None = None,
                accept: Iterable[int] = ()) -> httpx.Response:
        """Send one request to `path` (below the base URL, or a full URL from a `next` link)."""
        url = path if path.startswith(("http://", "https://")) else self.base_url + path
        if not _same_origin(url, self.base_url):
            raise PermanentError(f"{self.host} sent a link to another host ({_origin(url)}); "
                                 "not following it with our token")
        what = f"{method} {_path_of(url, self.base_url)}"
        try:
            response = self._client.request(
                method, url, json=json, params=params,
                headers={**self._auth(), **(headers or {})})
        except httpx.TimeoutException as exc:
            reason = f"{self.host} did not answer {what} in time ({type(exc).__name__})"
            raise TransientError(self._scrub(reason), delay=NETWORK_DELAY) from None
        except httpx.TransportError as exc:
            raise TransientError(self._scrub(f"{self.host} is unreachable for {what}: {exc}"),
                                 delay=NETWORK_DELAY) from None
        if response.status_code < 400 or response.status_code in set(accept):
            return response
        raise self._failure(response, what)

    def json(self, method: str, path: str, **kwargs: Any) -> Any:
        """`request`, then the decoded JSON body (None for an empty one)."""
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise TransientError(f"{self.host} answered {method} {path} with something that is "
                                 "not JSON", delay=NETWORK_DELAY) from None

    def pages(self, path: str, params: Mapping[str, str | int] | None = None) -> Iterator[Any]:
        """Every item of a paginated list, following `Link: <…>; rel="next"`."""
        url: str | None = path
        query = params
        for _ in range(MAX_PAGES):
            if url is None:
                return
            response = self.request("GET", url, params=query)
            items = response.json()
            if not isinstance(items, list):
                raise PermanentError(f"{self.host} answered GET {path} with no list")
            yield from items
            url = response.links.get("next", {}).get("url")
            query = None  # the next link carries the query
        raise PermanentError(f"{self.host} listed more than {MAX_PAGES} pages for {path}")

    def message_of(self, response: httpx.Response) -> str:
        """The host's own words for a refusal, one line, scrubbed of secrets."""
        return self._scrub(_message(response))

    def _failure(self, response: httpx.Response, what: str) -> Exception:
        status = response.status_code
        message = self.message_of(response)
        said = f"{self.host} answered {what} with {status}" + (f": {message}" if message else "")
        if status == 429 or (status == 403 and _rate_limited(response, message)):
            delay = self._retry_after(response)
            return TransientError(f"{said} (rate limited; retry in {delay:.0f}s)",
                                  delay=delay, status=status)
        if status >= 500:
            return TransientError(said, delay=self._retry_after(response, NETWORK_DELAY),
                                  status=status)
        return PermanentError(said, status=status)

    def _retry_after(self, response: httpx.Response, default: float = RATE_LIMIT_DELAY) -> float:
        header = response.headers.get("retry-after")
        if header:
            if header.strip().isdigit():
                return float(header.strip())
            try:
                when = email.utils.parsedate_to_datetime(header)
                return max(1.0, when.timestamp() - self._clock())
            except (TypeError, ValueError):
                pass
        reset = response.headers.get("x-ratelimit-reset") or response.headers.get("ratelimit-reset")
        if reset and reset.strip().isdigit() and response.headers.get(
                "x-ratelimit-remaining", response.headers.get("ratelimit-remaining")) == "0":
            return max(1.0, float(reset) - self._clock())
        return default

    def _scrub(self, text: str) -> str:
        for secret in self._secrets():
            if len(secret) >= MIN_SCRUBBED:
                text = text.replace(secret, "***")
        return text


def _rate_limited(response: httpx.Response, message: str) -> bool:
    """GitHub answers 403 for its primary limit (remaining 0) and its secondary limits."""
    return (response.headers.get("x-ratelimit-remaining") == "0"
            or "retry-after" in response.headers
            or "rate limit" in message.lower())


def _message(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return " ".join(response.text.split())[:300]
    if not isinstance(body, dict):
        return ""
    parts = [_words(body.get("message") or body.get("error") or "")]
    for error in body.get("errors") or ():
        parts.append(_words(error.get("message") or error) if isinstance(error, dict)
                     else _words(error))
    return "; ".join(p for p in parts if p)[:500]


def _words(value: Any) -> str:
    if isinstance(value, dict):
        return "; ".join(f"{k} {_words(v)}" for k, v in value.items())
    if isinstance(value, list):
        return ", ".join(_words(v) for v in value)
    return " ".join(str(value).split())


def _origin(url: str) -> str:
    parsed = httpx.URL(url)
    return f"{parsed.scheme}://{parsed.netloc.decode()}"


def _same_origin(url: str, base_url: str) -> bool:
    return _origin(url) == _origin(base_url)


def _path_of(url: str, base_url: str) -> str:
    return url[len(base_url):].split("?", 1)[0] if url.startswith(base_url) else httpx.URL(url).path
