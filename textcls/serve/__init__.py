"""`textcls serve`: a classifier behind an HTTP endpoint, on LitServe (the serve extra).

- `command.py`: the command (`serve`, whose docstring is `--help`): checks, then starts the server.
- `api.py`: the LitServe API: each inference worker loads the predictor and answers batches of requests.
- `guard.py`: what a request may hold, refused with a 4xx before it reaches the model.
- `answers.py`: the JSON answer per text, from the prediction table, and the model's facts (`/info`).
- `server.py`: LitServer with a graceful SIGTERM (requests in flight answered).

Only `command.py` is imported with the package: LitServe is imported when the command runs.
"""

from textcls.serve.command import ServeError, serve

__all__ = ["ServeError", "serve"]
