"""Google's tuning APIs on loopback: the demo's, the tests' and the benchmarks' default backend.

One process, one port, one simulated clock, one fault plan and one set of counters serve three
surfaces: the Gemini API's ``tunedModels`` (below), Vertex AI ``tuningJobs`` with the TensorBoard
resources of their loss (``orchestrator.emulator.vertex``, which lists every route and how sure each
shape is), and Cloud Storage's JSON API (``orchestrator.emulator.storage``), plus ``POST /token``, an
OAuth token endpoint for service-account credentials (``orchestrator.emulator.oauth``).

It behaves like ``generativelanguage.googleapis.com`` for tuning, errors and all (shapes and rules from
``shared/gemini-api.md``), so that what works against it works against Google.  It imports nothing from
the rest of ``orchestrator``: it shares only the wire format with the daemon.

Starting it
-----------
::

    from orchestrator.emulator import EmulatorSettings, create_app, running_emulator

    settings = EmulatorSettings(step_seconds=2.0, time_scale=20.0, seed=0)   # 0.1 s of real time per step
    app = create_app(settings)                                 # an aiohttp web.Application
    async with running_emulator(settings, host="127.0.0.1", port=0) as base_url:
        ...                                                    # "http://127.0.0.1:PORT"

From a shell: ``python -m orchestrator.emulator --port 8765 --time-scale 20`` (or ``orchestrator
emulator ...``).  ``--help`` lists every knob; each is also read from ``ORCHESTRATOR_EMULATOR_<KNOB>``
(``..._HOST``, ``..._PORT``, ``..._STEP_SECONDS``, ``..._TIME_SCALE``, ``..._SEED``,
``..._METADATA_REFRESH_SECONDS``, ``..._START_DELAY_SECONDS``, ``..._MIN_EXAMPLES``, ``..._MAX_EXAMPLES``,
``..._DEFAULT_SIZE_THRESHOLD``, ``..._ALLOW_TUNED_MODEL_SOURCE``, ``..._API_KEYS``, ``..._TOKENS``,
``..._TOKEN_TTL_SECONDS``, ``..._MAX_ACTIVE_JOBS``, ``..._PRETTY``, ``..._FAULTS``).  ``create_app`` and
``running_emulator`` also take ``clock=`` (a monotonic clock in seconds) so tests can move time by hand.

Point the SDKs at it: ``google.generativeai.configure(api_key="k", transport="rest",
client_options={"api_endpoint": base_url})`` and ``google.genai.Client(api_key="k",
http_options={"base_url": base_url + "/", "api_version": "v1beta"})``.

Routes (``{v}`` = API version; the name in brackets is the route's name for faults and stats)
----------------------------------------------------------------------------------------------
* ``POST /{v}/tunedModels[?tunedModelId=]`` [create], ``GET /{v}/tunedModels?pageSize&pageToken&filter``
  [list_models], ``GET|PATCH|DELETE /{v}/tunedModels/{id}`` [get_model, patch_model (``?updateMask=``,
  derived from the body when absent), delete_model]: v1beta, v1beta3, v1alpha.
* ``GET /{v}/tunedModels/{id}/operations/{op}`` [get_operation], ``GET /{v}/tunedModels/{id}/operations``
  [list_operations], ``POST /{v}/tunedModels/{id}/operations/{op}:cancel`` [cancel_operation],
  ``DELETE …/operations/{op}`` [delete_operation, always 501 UNIMPLEMENTED]: v1, v1beta, v1beta3, v1alpha.
* ``POST /{v}/tunedModels/{id}:generateContent`` and ``:streamGenerateContent`` (JSON array, or SSE with
  ``?alt=sse``) on v1, v1beta, v1alpha; ``:generateText`` on v1beta3, v1beta [generate].
* ``GET /{v}/models`` [list_base_models] and ``GET /{v}/models/{model}`` [get_base_model].
* ``POST|GET /{v}/tunedModels/{id}/permissions`` [create_permission, list_permissions],
  ``GET|PATCH|DELETE /{v}/tunedModels/{id}/permissions/{perm}`` [get_permission, patch_permission
  (role only), delete_permission], ``POST /{v}/tunedModels/{id}:transferOwnership`` [transfer_ownership]:
  v1beta, v1beta3, v1alpha.  Access follows roles (READER: get, poll, generate; WRITER: also patch,
  cancel, share; OWNER: also delete and transfer); a credential's principal (``KEY=PRINCIPAL``) is what
  an ``emailAddress`` names.

Anything else is a JSON 404.  Body fields take camelCase or snake_case at any depth; bodies may have
trailing commas; unknown fields, oneof conflicts and unknown query parameters are 400 (query
parameters in either spelling, plus the system ones: ``key``, ``alt``, ``$alt``, ``fields``,
``prettyPrint``, ...); ``$alt=json;enum-encoding=int`` gives integer enums.  Credentials: ``?key=``,
``x-goog-api-key``, ``Authorization: Bearer`` or ``?access_token=``; checked only when
``api_keys``/``tokens`` are set (bearer tokens still expire after ``token_ttl_seconds`` when that is
set).  ``pretty`` indents answers as production does.

Training
--------
Lazy and deterministic for a seed: ``totalSteps = ceil(N·epochs/batch)``; step ``k`` ends near
``startTime + k·step_seconds`` (simulated seconds; ``time_scale`` simulated seconds pass per real
second).  Timestamps are the real wall-clock times at which things happen, never in the future, so
at ``time_scale=20`` snapshots are 0.1 s apart in ``computeTime``.  Operation metadata refreshes
every ``metadata_refresh_seconds`` (production: about 60; default 0 = always fresh).  Cancel takes
effect at the next step boundary (operation ``error {code: 1, message: "Operation cancelled."}``, model
FAILED); delete stops training at once and frees the id.

Faults
------
A plan (``--faults`` JSON or ``@file``, ``ORCHESTRATOR_EMULATOR_FAULTS``, or ``POST /_emulator/faults``)::

    {"seed": 0, "rules": [
      {"kind": "http_error", "status": 503, "routes": ["create"], "calls": [3, 5]},
      {"kind": "rate_limit", "retry_delay_seconds": 2.5, "probability": 0.1},
      {"kind": "latency", "seconds": 0.2, "routes": ["get_operation"]},
      {"kind": "drop_connection", "routes": ["get_operation"], "calls": [2]},
      {"kind": "lost_response", "routes": ["create"], "calls": [1]},
      {"kind": "malformed_response", "routes": ["get_operation"], "calls": [3]},
      {"kind": "truncated_response", "routes": ["get_operation"], "calls": [4]},
      {"kind": "token_expired", "calls": [4]},
      {"kind": "fail_job", "step": 5, "code": 13, "calls": [2]},
      {"kind": "stall_job", "step": 3, "probability": 0.5}]}

Each rule counts its own matching calls from 1; ``calls`` picks exact calls, otherwise ``probability``
(default 1) is drawn from ``random.Random(seed)``.  ``max_active_jobs`` caps CREATING models per project
(429 with QuotaFailure and RetryInfo).  See ``faults`` for every kind.

Introspection (``/_emulator/``, never an API path)
--------------------------------------------------
* ``GET /_emulator/stats`` → ``{"requests": {route: {status: n}}, "creates": {name: n}, "active_jobs": n,
  "peak_active_jobs": n, "models": n, "vertex": {...}, "storage": {...}, "faults": plan, "fault_calls":
  [n per rule]}``; ``peak_active_jobs`` is the most tuned models ever CREATING at once (deleted ones
  included, exact whatever the polling); statuses are HTTP codes as strings plus
  ``"dropped"`` (connection closed without a response), ``"lost"`` (handled, then dropped),
  ``"malformed"`` and ``"truncated"`` (handled, then half a body).
  ``DELETE /_emulator/stats`` zeroes the counters (request, create and upload counts; the peaks are
  computed from the jobs held, so only ``POST /_emulator/reset`` clears them).
* ``GET /_emulator/requests`` → the ``requests`` part; ``GET /_emulator/creates`` → ``{"tunedModels/x": n}``,
  committed creates per tuned model (the exactly-once witness).
* ``GET /_emulator/jobs`` → ``{"jobs": [{name, operation, owner, state, completedSteps, totalSteps, ending,
  cancelRequested}], "active": n}``.
* ``GET /_emulator/vertex/jobs`` → ``{"jobs": [{name, state, tuningJobState, completedSteps, totalSteps,
  labels, trainingDatasetUri, listedFrom}], "tuning_jobs": n, "active_jobs": n, "peak_active_jobs": n,
  "peak_running_jobs": n, "creates_by_label": {"k=v": n}, "creates_by_dataset": {"gs://…": n}}``: the
  peaks are the most Vertex jobs ever active at once (created and not ended: what a client-side cap
  governs) and running at once (holding a quota slot); the same summary is ``stats["vertex"]``.
* ``GET /_emulator/vertex/creates`` → ``{"by_label": {"k=v": n}, "by_dataset": {"gs://b/o": n}}``,
  committed creates (the exactly-once witness on Vertex, where ids are the server's).
* ``GET /_emulator/storage/uploads`` → ``{"gs://b/o": n}`` committed uploads; ``stats["storage"]``
  also counts objects and lists buckets.
* ``GET /_emulator/faults`` → ``{seed, rules, calls}``; ``POST`` a plan to replace it (400
  ``{"error": "..."}`` when malformed); ``DELETE`` to clear it.
* ``POST /_emulator/reset`` → ``{}``: forget every tuned model, tuning job, object, counter and fault.
"""

from orchestrator.emulator.app import create_app, emulator_of, running_emulator
from orchestrator.emulator.faults import FaultPlan, FaultRule
from orchestrator.emulator.settings import EmulatorSettings

__all__ = ["EmulatorSettings", "FaultPlan", "FaultRule", "create_app", "emulator_of", "running_emulator"]
