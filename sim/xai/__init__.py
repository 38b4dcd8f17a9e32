"""An xAI-compatible (OpenAI chat completions) API that answers by fixed, documented rules."""

from sim.xai.app import SimXai
from sim.xai.config import SimXaiConfig
from sim.xai.server import SimXaiServer, serve

__all__ = ["SimXai", "SimXaiConfig", "SimXaiServer", "serve"]
