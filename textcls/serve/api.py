"""The LitServe API of `textcls serve`: each inference worker loads the model as `textcls predict` reads it
(`load_predictor`: layout, calibration, thresholds, task; fp32 on CPU, the precision `predict` picks on
CPU) and answers the requests LitServe batches together with one call of the predictor.
"""

import os
from itertools import accumulate

import litserve as ls
import torch
from fastapi import Depends, HTTPException
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from textcls.inference import load_predictor
from textcls.quiet import quiet_libraries
from textcls.serve.answers import answers
from textcls.serve.guard import PredictRequest, bearer_matches

# reads `Authorization: Bearer <key>` (None without one); the docs at /docs offer to send it
BEARER = Depends(HTTPBearer(auto_error=False))


class TextclsAPI(ls.LitAPI):
    """Classify the texts of `POST /predict` requests; answers `{"predictions": [...]}`, one per text in
    order (see textcls/serve/answers.py).

    Args:
        model: An exported folder or a checkpoint.
        quantize: "int8": dynamically quantized Linear layers (None: as trained).
        target_precision: Label UNCERTAIN the texts below the validation cut-off for this precision.
        at_least_one: Multi-label models: a text where no label passes gets its top-scoring one.
        api_key: The bearer token every request must carry (None: none needed).
        workers: Inference workers sharing this machine's cores.
        threads: Torch threads per worker (None: this machine's cores divided among the workers).
        texts_per_pass: Texts per forward pass (requests batched together may hold more).
        litapi: LitServe's batching options (`max_batch_size`, `batch_timeout`).
    """

    def __init__(
        self,
        model: str,
        quantize: str | None = None,
        target_precision: float | None = None,
        at_least_one: bool = False,
        api_key: str | None = None,
        workers: int = 1,
        threads: int | None = None,
        texts_per_pass: int = 8,
        **litapi,
    ):
        super().__init__(**litapi)
        self.model, self.quantize, self.target_precision = model, quantize, target_precision
        self.at_least_one, self.api_key, self.texts_per_pass = at_least_one, api_key, texts_per_pass
        self.threads = threads or max(1, len(os.sched_getaffinity(0)) // workers)

    def setup(self, device) -> None:
        if os.environ.get("TEXTCLS_VERBOSE", "0") in ("", "0"):
            quiet_libraries()
        # workers share the cores instead of each starting a thread per core
        torch.set_num_threads(self.threads)
        self.predictor = load_predictor(self.model, self.quantize)
        self.uncertain_below = self.predictor.cutoff(self.target_precision)[0]

    def decode_request(self, request: PredictRequest) -> list:
        return request.inputs()

    def predict(self, x: list) -> list:
        # batched (max_batch_size > 1), `x` holds the texts of several requests and the answer is one list
        # per request; unbatched, `x` is one request's texts
        requests = x if self.max_batch_size > 1 else [x]
        texts = [text for request in requests for text in request]
        probs = self.predictor.predict_probs(texts, self.texts_per_pass)
        table = self.predictor.results(texts, probs, self.uncertain_below, self.at_least_one)
        found = answers(table, self.predictor.label_names)
        ends = list(accumulate(len(r) for r in requests))
        per_request = [found[end - len(r) : end] for r, end in zip(requests, ends, strict=True)]
        return per_request if self.max_batch_size > 1 else per_request[0]

    def encode_response(self, output: list) -> dict:
        return {"predictions": output}

    def authorize(self, credentials: HTTPAuthorizationCredentials | None = BEARER) -> None:
        """LitServe's hook for every route it serves (/predict, /health, /info): the bearer token."""
        if not self.api_key:
            return
        token = f"Bearer {credentials.credentials}" if credentials else None
        if not bearer_matches(token, self.api_key):
            raise HTTPException(
                401,
                "this server needs the header 'Authorization: Bearer <key>' with its API key",
                headers={"WWW-Authenticate": "Bearer"},
            )
