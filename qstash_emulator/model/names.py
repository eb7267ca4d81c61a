"""Every header name the emulator reads or writes: below the parser and the options model,
which both name them."""

from __future__ import annotations

__all__ = ["H"]


class H:
    """Every header name the emulator reads or writes, lower-case for lookups."""

    AUTHORIZATION = "authorization"
    CONTENT_TYPE = "content-type"
    FORWARD = "upstash-forward-"
    HEADER_FORWARD = "upstash-header-forward"
    METHOD = "upstash-method"
    DELAY = "upstash-delay"
    NOT_BEFORE = "upstash-not-before"
    RETRIES = "upstash-retries"
    RETRY_DELAY = "upstash-retry-delay"
    TIMEOUT = "upstash-timeout"
    DEDUP_ID = "upstash-deduplication-id"
    CONTENT_DEDUP = "upstash-content-based-deduplication"
    LABEL = "upstash-label"
    REDACT = "upstash-redact-fields"
    FLOW_KEY = "upstash-flow-control-key"
    FLOW_VALUE = "upstash-flow-control-value"
    QUEUE_NAME = "upstash-queue-name"
    CRON = "upstash-cron"
    SCHEDULE_ID = "upstash-schedule-id"
    CALLBACK = "upstash-callback"
    FAILURE_CALLBACK = "upstash-failure-callback"
    # Upstash Workflow, on publishes (also after an Upstash-Callback- or -Failure-Callback-).
    RUN_ID = "upstash-workflow-runid"
    RUN_INIT = "upstash-workflow-init"
    RUN_URL = "upstash-workflow-url"
    CALL_TYPE = "upstash-workflow-calltype"
    INVOKE = "upstash-workflow-invoke"
    FEATURE_SET = "upstash-feature-set"
    UNKNOWN_SDK = "upstash-workflow-unknown-sdk"
    TRIGGER_BY_SDK = "upstash-workflow-trigger-by-sdk"
    WORKFLOW_PREFIX = "upstash-workflow-"
    # Sent on deliveries.
    SIGNATURE = "Upstash-Signature"
    MESSAGE_ID = "Upstash-Message-Id"
    RETRIED = "Upstash-Retried"
    OUT_SCHEDULE_ID = "Upstash-Schedule-Id"
    TOPIC_NAME = "Upstash-Topic-Name"
    CALLER_IP = "Upstash-Caller-Ip"
    REGION = "Upstash-Region"
    USER_AGENT = "User-Agent"
    OUT_RUN_ID = "Upstash-Workflow-Runid"
    OUT_RUN_CREATED_AT = "Upstash-Workflow-Createdat"
    OUT_UNKNOWN_SDK = "Upstash-Workflow-Unknown-Sdk"
    # Read on responses.
    NON_RETRYABLE = "upstash-nonretryable-error"
    SDK_VERSION = "upstash-workflow-sdk-version"
    SDK_NAME = "upstash-workflow-sdk"
    RETRY_AFTER = (
        "retry-after",
        "x-ratelimit-reset",
        "x-ratelimit-reset-requests",
        "x-ratelimit-reset-tokens",
    )
