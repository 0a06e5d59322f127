"""The base models the emulator knows, with the sampling defaults tuned models copy from them.

Values come from the transcripts (gemini-api.md §3.1, §7.3): tuned models inherit temperature/topP/topK
from their base at creation; a base is tunable when ``createTunedModel`` is among its
``supportedGenerationMethods``.  The 1.5 Flash values are the documented guess (§3.1 [X]).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Final


@dataclass(frozen=True, slots=True)
class BaseModel:
    """One ``Model`` record, with only the fields a tuning client looks at."""

    name: str
    display_name: str
    version: str
    temperature: float
    top_p: float
    top_k: int
    methods: tuple[str, ...]
    input_token_limit: int = 30720
    output_token_limit: int = 2048

    @property
    def tunable(self) -> bool:
        """Whether ``tunedModels.create`` accepts this base."""
        return "createTunedModel" in self.methods

    @property
    def generation_method(self) -> str:
        """The inference method tuned models of this base answer (text-bison tunes use generateText)."""
        return "generateText" if "generateText" in self.methods else "generateContent"

    def to_json(self) -> dict[str, Any]:
        """The ``Model`` resource as ``GET /v1beta/models/{model}`` returns it."""
        return {
            "name": self.name,
            "baseModelId": self.name.removeprefix("models/").removesuffix("-tuning"),
            "version": self.version,
            "displayName": self.display_name,
            "inputTokenLimit": self.input_token_limit,
            "outputTokenLimit": self.output_token_limit,
            "supportedGenerationMethods": list(self.methods),
            "temperature": self.temperature,
            "maxTemperature": 2.0,
            "topP": self.top_p,
            "topK": self.top_k,
        }


BASE_MODELS: Final[dict[str, BaseModel]] = {
    model.name: model
    for model in (
        BaseModel(
            "models/gemini-1.5-flash-001-tuning",
            "Gemini 1.5 Flash 001 Tuning",
            "001",
            1.0,
            0.95,
            64,
            ("generateContent", "countTokens", "createTunedModel"),
            input_token_limit=16384,
            output_token_limit=8192,
        ),
        BaseModel(
            "models/gemini-1.0-pro-001",
            "Gemini 1.0 Pro 001 (Tuning)",
            "001",
            0.9,
            1.0,
            1,
            ("generateContent", "countTokens", "createTunedModel"),
        ),
        BaseModel(
            "models/text-bison-001",
            "PaLM 2 (Legacy)",
            "001",
            0.7,
            0.95,
            40,
            ("generateText", "countTextTokens", "createTunedModel"),
            input_token_limit=8196,
            output_token_limit=1024,
        ),
        BaseModel(
            "models/gemini-1.5-flash-001",
            "Gemini 1.5 Flash 001",
            "001",
            1.0,
            0.95,
            64,
            ("generateContent", "countTokens"),
            input_token_limit=1000000,
            output_token_limit=8192,
        ),
    )
}
