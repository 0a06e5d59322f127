"""Vertex AI supervised tuning on loopback: ``tuningJobs`` and the TensorBoard resources of their loss.

Served on the emulator's one port beside the Gemini API and Cloud Storage, on the same simulated clock,
fault plan and ``/_emulator/`` counters.  Point ``google-genai`` at it with
``genai.Client(vertexai=True, project=P, location=L, credentials=google.oauth2.credentials.Credentials(
token="any"), http_options={"base_url": EMULATOR})``; it then calls ``{EMULATOR}/v1beta1/projects/P/
locations/L/tuningJobs`` exactly as it would call Google.

Routes (``{v}`` = ``v1`` or ``v1beta1``; ``{parent}`` = ``projects/{project}/locations/{location}``, the
project by id or number; the bracketed name is the route's name for faults and stats)
-----------------------------------------------------------------------------------------------------
* ``POST /{v}/{parent}/tuningJobs`` [vertex_create] → the TuningJob, PENDING.
* ``GET /{v}/{parent}/tuningJobs/{id}`` [vertex_get].
* ``GET /{v}/{parent}/tuningJobs?pageSize=&pageToken=&filter=`` [vertex_list] → ``{tuningJobs, nextPageToken}``.
* ``POST /{v}/{parent}/tuningJobs/{id}:cancel`` [vertex_cancel] → ``{}``.
* ``GET /{v}/{parent}/metadataStores/default/contexts/{experiment}`` [vertex_context].
* ``GET /{v}/{parent}/tensorboards/{tb}/experiments/{experiment}/runs`` [vertex_runs].
* ``GET /{v}/{parent}/tensorboards/{tb}/experiments/{experiment}/runs/{run}/timeSeries`` [vertex_time_series].
* ``GET /{v}/…/timeSeries/{ts}:read?maxDataPoints=`` [vertex_read].

How sure each shape is (tags as in vertex-api.md: [high] read in the protos / SDK source, [med] docs or
a real dump, [low] the emulator's own choice, with the reason)
-------------------------------------------------------------------------------------------------------
* [high] The four tuning paths and verbs (``genai_tuning_service.proto``); the TuningJob field names and
  nesting (``tuning_job.proto``); the JobState names (``job_state.proto``); ``tuningJobState`` names
  (python-genai ``types.TuningJobState``); the AdapterSize names; int64 fields as JSON strings and the
  field order (proto3 JSON).
* [med] Resource names carry the project *number* (12 digits here, derived from the id's SHA-256, see
  ``orchestrator.emulator.projects``); ``experiment`` is ``…/metadataStores/default/contexts/
  tuning-experiment-<YYYYMMDDhhmmss + µs>``; defaults filled in on output (``epochCount "10"``,
  ``adapterSize ADAPTER_SIZE_FOUR``, ``learningRateMultiplier 1``); ``tuningJobMetadata.completedEpochCount``
  / ``completedStepCount``; a failed job's ``error.code`` 13; the context's
  ``metadata.backing_tensorboard_resource``; the TensorBoard list/read paths and their answers
  (``tensorboardRuns``, ``tensorboardTimeSeries``, ``timeSeriesData`` with ``step`` as a string); the
  401 for API keys ("API keys are not supported by this API…", ``CREDENTIALS_MISSING``); 403
  ``IAM_PERMISSION_DENIED`` with ``permission``/``resource`` metadata.
* [low] ``tuningStepCount`` is the job's total, ``ceil(examples / vertex_batch_size) * epochs`` (Vertex
  picks its batch size; the contract derives a step's epoch as ``ceil(step * epochs / tuningStepCount)``,
  which this makes exact); token counts are ``ceil(characters / 4)`` per text part (no tokenizer
  offline); the list filter grammar (``state=JOB_STATE_X``, ``labels.KEY=VALUE``, ``AND``); list order
  newest first and a default page of 100 (production documents neither); a cancel of an ended job is
  400 FAILED_PRECONDITION (production says only "best effort"); a cancelled job's ``error`` is
  ``{code: 1, message: "CANCELLED"}``; an EXPIRED job carries ``error.code`` 4; a PARTIALLY_SUCCEEDED
  job has a ``tunedModel`` and no ``error``; one checkpoint per epoch, each with its own endpoint (the
  last one is the tuned model's endpoint); post-processing lasts one step; the TensorBoard run's id is
  the job id, and time-series ids are numbers; ``maxDataPoints`` keeps an even sample with the newest
  point; eval series get one point per epoch; 404 messages' wording; the 429's wording (it carries
  ErrorInfo, QuotaFailure and RetryInfo); validation happens at create (production checks some of the
  dataset later and fails the job instead); the epoch bound 1-100 and adapter sizes per model.
* Not served: ``preTunedModel`` (continuous tuning: 400), ``$alt=json;enum-encoding=int``, other tuning
  specs (preference, distillation), ``rebaseTunedModel``, deletes, other metadata or TensorBoard methods.
"""
