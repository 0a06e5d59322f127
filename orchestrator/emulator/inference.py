"""A deterministic stand-in for inference on a tuned model.

The answer is the output of the training example closest to the prompt, which is what a well-tuned
model on the tutorial's dataset would say and is stable across runs.  ``modelVersion: "emulated"``
(a real GenerateContentResponse field, so SDKs still parse it) marks the answer as emulated.
"""

from __future__ import annotations

import difflib
import math
from typing import Any, Final

from orchestrator.emulator.errors import ApiError
from orchestrator.emulator.records import TunedModelRecord

_SAFETY_CONTENT: Final = [
    {"category": f"HARM_CATEGORY_{name}", "probability": "NEGLIGIBLE"}
    for name in ("SEXUALLY_EXPLICIT", "HATE_SPEECH", "HARASSMENT", "DANGEROUS_CONTENT")
]
_SAFETY_TEXT: Final = [
    {"category": f"HARM_CATEGORY_{name}", "probability": "NEGLIGIBLE"}
    for name in ("DEROGATORY", "TOXICITY", "VIOLENCE", "SEXUAL", "MEDICAL", "DANGEROUS")
]


def closest_output(examples: tuple[tuple[str, str], ...], prompt: str) -> str:
    """Output of the example whose input is most similar to ``prompt`` (first one wins a tie)."""
    wanted = prompt.strip().lower()
    best, best_score = examples[0][1], -1.0
    for text_input, output in examples:
        candidate = text_input.strip().lower()
        if candidate == wanted:
            return output
        score = difflib.SequenceMatcher(None, candidate, wanted, autojunk=False).ratio()
        if score > best_score:
            best, best_score = output, score
    return best


def _tokens(text: str) -> int:
    return max(1, math.ceil(len(text) / 4))


def check_ready(record: TunedModelRecord, state: str) -> None:
    """400 FAILED_PRECONDITION unless the model finished tuning."""
    if state != "ACTIVE":
        raise ApiError(
            "FAILED_PRECONDITION",
            f"Tuned model {record.name} is not ready for inference: its state is {state}.",
        )


def generate_content(record: TunedModelRecord, body: dict[str, Any]) -> dict[str, Any]:
    """A GenerateContentResponse for ``{"contents": [{"parts": [{"text": ...}]}]}``."""
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise ApiError.invalid("* GenerateContentRequest.contents: contents is not specified\n", "contents")
    texts: list[str] = []
    for content in contents:
        parts = content.get("parts", []) if isinstance(content, dict) else []
        if isinstance(content, dict) and content.get("role", "user") != "user":
            continue
        texts.extend(str(part.get("text", "")) for part in parts if isinstance(part, dict))
    prompt = "\n".join(texts)
    answer = closest_output(record.spec.examples, texts[-1] if texts else "")
    return {
        "candidates": [
            {
                "content": {"parts": [{"text": answer}], "role": "model"},
                "finishReason": "STOP",
                "index": 0,
                "safetyRatings": _SAFETY_CONTENT,
            }
        ],
        "usageMetadata": {
            "promptTokenCount": _tokens(prompt),
            "candidatesTokenCount": _tokens(answer),
            "totalTokenCount": _tokens(prompt) + _tokens(answer),
        },
        "modelVersion": "emulated",
    }


def generate_text(record: TunedModelRecord, body: dict[str, Any]) -> dict[str, Any]:
    """A PaLM-style GenerateTextResponse for ``{"prompt": {"text": ...}, "candidateCount": n}``."""
    prompt = body.get("prompt")
    if not isinstance(prompt, dict) or not isinstance(prompt.get("text"), str):
        raise ApiError.invalid("prompt.text is required.", "prompt")
    count = body.get("candidateCount", body.get("candidate_count", 1))
    if not isinstance(count, int) or not 1 <= count <= 8:
        raise ApiError.invalid("candidate_count must be between 1 and 8.", "candidate_count")
    answer = closest_output(record.spec.examples, prompt["text"])
    return {"candidates": [{"output": answer, "safetyRatings": _SAFETY_TEXT} for _ in range(count)]}
