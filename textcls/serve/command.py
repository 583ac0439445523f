"""`textcls serve`: check the options and the model in this process, in one line each, then start LitServe."""

import gc
import os
import sys
from pathlib import Path

from textcls.inference import load_predictor
from textcls.quantize import check_quantize

HOSTS = ("127.0.0.1", "0.0.0.0", "::")  # what LitServe binds: this machine only, or every interface
INSTALL = 'textcls serve needs LitServe: pip install "textcls[serve]"'


class ServeError(ValueError):
    """A `textcls serve` option or model that cannot be served."""


def serve(
    model: str,
    host: str = "127.0.0.1",
    port: int = 8000,
    max_batch_size: int = 32,
    batch_timeout: float = 0.01,
    timeout: float = 30,
    workers: int = 1,
    threads: int | None = None,
    texts_per_pass: int = 8,
    quantize: str = "none",
    api_key: str | None = None,
    target_precision: float | None = None,
    at_least_one: bool = False,
    max_request_texts: int = 256,
    max_text_chars: int = 100_000,
    max_body_bytes: int = 16 * 2**20,
    log_level: str = "warning",
) -> None:
    """Serve a classifier over HTTP with dynamic batching (LitServe, the serve extra).

    `POST /predict` with `{"texts": [...]}` answers `{"predictions": [...]}`, one object per text in
    order, with the probabilities of `textcls predict`. `GET /health` answers 200 once the model is
    loaded, `GET /info` gives the model's facts, `/docs` the OpenAPI docs. Bad requests get a 4xx JSON
    body naming the problem. SIGTERM answers the requests in flight, then exits 0.

    Args:
        model: An exported folder or a textcls checkpoint, read as `textcls predict` reads it.
        host: 127.0.0.1 (this machine only), 0.0.0.0 or :: (every interface).
        port: The port to listen on (1024 to 65535).
        max_batch_size: Most requests LitServe batches into one call of the model (1: no batching).
        batch_timeout: Seconds LitServe waits for a batch to fill.
        timeout: Seconds a request may wait for the model before it is answered 504 (LitServe's timeout).
        workers: Inference worker processes, each with the model and a share of the CPU cores.
        threads: Torch threads per worker (default: the CPU cores divided among the workers). On a
            machine whose cores other programs keep busy, 1 avoids threads waiting on each other.
        texts_per_pass: Texts per forward pass: the texts of the requests batched together, sorted by
            length, are classified this many at a time, each pass padded to its longest text.
        quantize: "int8": classify with dynamically quantized int8 Linear layers (faster on CPU).
        api_key: Requests must carry `Authorization: Bearer <key>` (default: the TEXTCLS_API_KEY
            environment variable; none: no key needed). The environment keeps it out of `ps`.
        target_precision: Single-label models: label UNCERTAIN the texts below the smallest validation
            confidence cut-off that reaches this precision (as `predict --prediction.target_precision`).
        at_least_one: Multi-label models: a text where no label passes its threshold gets its top one.
        max_request_texts: Most texts in one request.
        max_text_chars: Most characters in one text (longer texts are refused, shorter ones are read
            as `predict` reads them: truncated, or in windows).
        max_body_bytes: Largest request body (413 above it).
        log_level: LitServe's and uvicorn's log level (info shows every request).
    """
    limits = {"max_texts": max_request_texts, "max_chars": max_text_chars, "max_bytes": max_body_bytes}
    counts = {"max_batch_size": max_batch_size, "workers": workers, "threads": threads or 1}
    counts["texts_per_pass"] = texts_per_pass
    check_options(host, port, batch_timeout, timeout, **counts, **limits)
    quantize = check_quantize(quantize, "--quantize")
    api_key = api_key or os.environ.get("TEXTCLS_API_KEY") or None
    try:
        import litserve  # noqa: F401
    except ImportError as err:
        raise ServeError(INSTALL) from err
    from textcls.serve.answers import model_info
    from textcls.serve.api import TextclsAPI
    from textcls.serve.guard import RequestGuard
    from textcls.serve.server import TextclsServer

    path = Path(model).expanduser()
    if not path.exists():
        raise ServeError(f"model '{model}' does not exist: pass an exported folder or a checkpoint")
    # loaded here once, so that a model that cannot be served stops before anything listens
    predictor = load_predictor(path, quantize)
    uncertain_below = check_decisions(predictor, target_precision)
    info = model_info(predictor, target_precision, uncertain_below)
    del predictor
    gc.collect()
    api = TextclsAPI(
        str(path), quantize, target_precision, at_least_one, api_key, workers, threads, texts_per_pass,
        max_batch_size=max_batch_size, batch_timeout=batch_timeout,
    )  # fmt: skip
    guard = {"path": api.api_path, "pairs": info["reads_pairs"], "api_key": api_key, **limits}
    address = f"http://{ {'0.0.0.0': '127.0.0.1', '::': '[::1]'}.get(host, host) }:{port}"
    server = TextclsServer(
        api,
        accelerator="cpu",  # the predictor runs on CPU, in fp32 as `predict` does there
        workers_per_device=workers,
        timeout=timeout,
        model_metadata=info,
        middlewares=[(RequestGuard, guard)],
        ready_line=f"textcls serve: {info['task']} model '{model}' ready at {address}/predict (docs: {address}/docs)",
    )
    print(f"textcls serve: loading '{model}' in {workers} worker(s)...", file=sys.stderr, flush=True)
    access_log = log_level in ("info", "debug", "trace")
    server.run(host=host, port=port, log_level=log_level, generate_client_file=False, access_log=access_log)


def check_options(host: str, port: int, batch_timeout: float, timeout: float, **counts: int) -> None:
    """One line for an option LitServe or the server would refuse later, or with a traceback."""
    if host not in HOSTS:
        raise ServeError(f"--host must be one of {', '.join(HOSTS)} (LitServe binds no other), got '{host}'")
    if not 1024 <= port <= 65535:
        raise ServeError(f"--port must be from 1024 to 65535, got {port}")
    options = {"max_texts": "max_request_texts", "max_chars": "max_text_chars", "max_bytes": "max_body_bytes"}
    for name, value in counts.items():
        if value < 1:
            raise ServeError(f"--{options.get(name, name)} must be at least 1, got {value}")
    if batch_timeout < 0:
        raise ServeError(f"--batch_timeout must be 0 or more seconds, got {batch_timeout}")
    if timeout <= batch_timeout:
        raise ServeError(f"--timeout ({timeout} s) must be longer than --batch_timeout ({batch_timeout} s)")


def check_decisions(predictor, target_precision: float | None) -> float:
    """The confidence cut-off of `target_precision` (0: none), which only a single-label model takes."""
    if target_precision is None:
        return 0.0
    if not 0 < target_precision <= 1:
        raise ServeError(f"--target_precision must be in (0, 1], got {target_precision}")
    refused = predictor.task.refuses(["--target_precision"])
    if refused:
        raise ServeError(refused)
    cutoff, message = predictor.cutoff(target_precision)
    print(f"textcls serve: {message}", file=sys.stderr)
    return cutoff
