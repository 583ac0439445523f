"""What a `POST /predict` request may hold, checked in the HTTP server before it reaches the model.

LitServe batches requests in the inference worker, where an error raised while decoding one request
answers every request of its batch: a bad request must be refused before it is queued. `RequestGuard`
is an ASGI middleware of the API server processes that refuses, each with a 4xx JSON body
(`{"detail": "..."}`) naming the problem: a missing or wrong bearer token (401), a body that is not
`Content-Type: application/json` (415), a body over the size limit (413), a body that is not JSON
(400), and a body of the wrong shape, too many texts or a text too long (422). What passes is handed
on unchanged.

`PredictRequest` is the shape without the limits (those are the server's options): LitServe gives it
to FastAPI as the endpoint's body, for the OpenAPI docs at /docs.
"""

import secrets
from typing import Annotated

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
    create_model,
)
from starlette.datastructures import Headers
from starlette.responses import JSONResponse

SHOWN_ERRORS = 3  # a body with many problems is answered with the first few


class TextPair(BaseModel):
    """A pair of texts, for a model trained on pairs (`data.text_pair_column`)."""

    model_config = ConfigDict(extra="forbid")
    text: str
    text_pair: str


class PredictRequest(BaseModel):
    """The texts to classify, in order: strings, or for a model of pairs `[text, text_pair]` or
    `{"text": ..., "text_pair": ...}`."""

    model_config = ConfigDict(
        extra="forbid", json_schema_extra={"examples": [{"texts": ["great service", "my parcel never came"]}]}
    )
    texts: list[str | tuple[str, str] | TextPair]

    def inputs(self) -> list:
        """The texts as the predictor takes them: strings, or `(text, text_pair)` tuples."""
        return [(t.text, t.text_pair) if isinstance(t, TextPair) else t for t in self.texts]


def _as_pair(value):
    # {"text": a, "text_pair": b} and [a, b] are the same pair; a dict with other keys fails as a pair
    if isinstance(value, dict):
        return (value.get("text"), value.get("text_pair")) if set(value) == {"text", "text_pair"} else value
    return value


def request_model(max_texts: int, max_chars: int, pairs: bool) -> type[BaseModel]:
    """`PredictRequest` with the server's limits: 1 to `max_texts` texts of at most `max_chars`
    characters each, strings for a model of single texts, pairs of strings for a model of pairs."""
    text = Annotated[str, StringConstraints(max_length=max_chars)]
    item = Annotated[tuple[text, text], BeforeValidator(_as_pair)] if pairs else text
    texts = Annotated[list[item], Field(min_length=1, max_length=max_texts)]
    return create_model("PredictRequest", __config__=ConfigDict(extra="forbid"), texts=(texts, ...))


def bearer_matches(authorization: str | None, api_key: str) -> bool:
    """Whether an `Authorization` header value is `Bearer <api_key>` (compared in constant time)."""
    scheme, _, token = (authorization or "").partition(" ")
    return scheme.lower() == "bearer" and secrets.compare_digest(token.strip().encode(), api_key.encode())


def describe(error: ValidationError) -> tuple[int, str]:
    """The status and one line for a body that failed validation: 400 when it is not JSON at all."""
    problems = error.errors(include_url=False, include_input=False, include_context=False)
    if problems[0]["type"] == "json_invalid":
        return 400, f"the body is not valid JSON: {problems[0]['msg']}"
    lines = []
    for problem in problems[:SHOWN_ERRORS]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in problem["loc"]).lstrip(".")
        lines.append(f"{where or 'body'}: {problem['msg']}")
    more = f" (and {len(problems) - SHOWN_ERRORS} more)" if len(problems) > SHOWN_ERRORS else ""
    return 422, "; ".join(lines) + more


class RequestGuard:
    """ASGI middleware: refuses bad `POST <path>` requests with a 4xx JSON body, passes the others on.

    Args:
        app: The application it wraps.
        path: The endpoint it guards.
        max_texts: Most texts in one request.
        max_chars: Most characters in one text.
        max_bytes: Largest request body.
        pairs: Whether the model reads pairs of texts.
        api_key: The bearer token requests must carry (None: none needed).
    """

    def __init__(
        self, app, path: str, max_texts: int, max_chars: int, max_bytes: int, pairs: bool, api_key=None
    ):
        self.app, self.path, self.max_bytes, self.api_key = app, path, max_bytes, api_key
        self.model = request_model(max_texts, max_chars, pairs)

    async def __call__(self, scope, receive, send) -> None:
        if scope["type"] != "http" or scope["path"] != self.path or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        refusal = self.refuse_headers(headers)
        body = b""
        if refusal is None:
            body, refusal = await self.read_body(receive)
        if refusal is None:
            refusal = self.refuse_body(body)
        if refusal is not None:
            status, detail = refusal
            extra = {"WWW-Authenticate": "Bearer"} if status == 401 else None
            await JSONResponse({"detail": detail}, status_code=status, headers=extra)(scope, receive, send)
            return
        await self.app(scope, _replay(body, receive), send)

    def refuse_headers(self, headers: Headers) -> tuple[int, str] | None:
        """401 without the bearer token, 415 for a body that is not JSON, 413 for a declared size over the limit."""
        if self.api_key and not bearer_matches(headers.get("authorization"), self.api_key):
            return 401, "this server needs the header 'Authorization: Bearer <key>' with its API key"
        media = headers.get("content-type", "").split(";")[0].strip().lower()
        if media != "application/json" and not media.endswith("+json"):
            got = f"'{media}'" if media else "none"
            return 415, f"send the body as JSON with the header 'Content-Type: application/json' (got {got})"
        declared = headers.get("content-length", "")
        if declared.isdigit() and int(declared) > self.max_bytes:
            return 413, f"the body is {int(declared)} bytes, over this server's limit of {self.max_bytes}"
        return None

    async def read_body(self, receive) -> tuple[bytes, tuple[int, str] | None]:
        """The whole body, or a 413 as soon as it grows over the limit (a body sent in chunks)."""
        parts, size, more = [], 0, True
        while more:
            message = await receive()
            if message["type"] == "http.disconnect":
                return b"", (400, "the client disconnected before sending the whole body")
            parts.append(message.get("body", b""))
            size += len(parts[-1])
            if size > self.max_bytes:
                return b"", (413, f"the body is over this server's limit of {self.max_bytes} bytes")
            more = message.get("more_body", False)
        return b"".join(parts), None

    def refuse_body(self, body: bytes) -> tuple[int, str] | None:
        try:
            self.model.model_validate_json(body)
        except ValidationError as err:
            return describe(err)
        return None


def _replay(body: bytes, receive):
    """A `receive` that gives the body already read, then what the client sends next (a disconnect)."""
    sent = False

    async def replay():
        nonlocal sent
        if sent:
            return await receive()
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replay
