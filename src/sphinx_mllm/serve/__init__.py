"""Serving: an OpenAI-compatible chat-completions API and a demo page (docs/serving.md).

    from sphinx_mllm.serve import ServeConfig, create_app, serve
    serve(pipeline, ServeConfig(api_key="..."), host="127.0.0.1", port=8000)

Needs the ``serve`` extra (FastAPI, uvicorn, httpx); importing this package does not, so the
command line works without it.
"""

from __future__ import annotations

from .config import DEFAULT_MODEL, ServeConfig


def create_app(pipeline, config: ServeConfig | None = None):
    """The FastAPI app serving ``pipeline`` (see :mod:`sphinx_mllm.serve.app`)."""
    from .app import create_app as make_app

    return make_app(pipeline, config or ServeConfig())


def serve(pipeline, config: ServeConfig, host: str = "127.0.0.1", port: int = 8000,
          log_level: str = "info") -> None:
    """Run the app with uvicorn until interrupted; our request log goes where uvicorn's goes."""
    import copy

    import uvicorn
    from uvicorn.config import LOGGING_CONFIG

    logging_config = copy.deepcopy(LOGGING_CONFIG)
    logging_config["loggers"]["sphinx_mllm"] = {"handlers": ["default"],
                                                "level": log_level.upper(), "propagate": False}
    uvicorn.run(create_app(pipeline, config), host=host, port=port, log_level=log_level,
                log_config=logging_config, timeout_graceful_shutdown=5)


__all__ = ["DEFAULT_MODEL", "ServeConfig", "create_app", "serve"]
