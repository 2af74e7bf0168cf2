"""forkd's limits, defaults and error codes, generated from packages/protocol by
scripts/gen-python-limits.ts (`npm run openapi`). Do not edit: a test fails when it is stale."""
from typing import Any, Dict

FORKD_VERSION = "0.2.0"
#: The local daemon's socket file inside the forkd home.
SOCKET_FILE = "forkd.sock"

#: Limits of the agent protocol and of what one call may carry.
LIMITS: Dict[str, Any] = {
    "max_frame_bytes": 16777216,
    "max_frame_header_bytes": 65536,
    "partial_frames": {
        "total_bytes": 268435456,
        "timeout_ms": 60000,
    },
    "agent_writes": {
        "max_queued_bytes": 8388608,
        "stall_timeout_ms": 30000,
    },
    "max_file_chunk_bytes": 4194304,
    "default_output_bytes": 1048576,
    "max_output_bytes": 8388608,
    "background_output_bytes": 1048576,
    "stream_chunk_bytes": 65536,
    "max_stream_line_bytes": 1048576,
    "max_exec_timeout_ms": 86400000,
    "default_exec_timeout_ms": 60000,
    "default_eval_timeout_ms": 60000,
    "max_code_bytes": 4194304,
    "max_arg_bytes": 131072,
    "max_args": 4096,
    "max_entropy_bytes": 4096,
    "restore_entropy_bytes": 192,
    "max_background_processes": 256,
    "max_list_entries": 10000,
    "max_list_depth": 16,
    "env": {
        "max_vars": 256,
        "max_name_chars": 256,
        "max_value_chars": 32768,
    },
    "metadata": {
        "max_keys": 64,
        "max_key_chars": 128,
        "max_value_chars": 1024,
    },
    "max_result_json_depth": 256,
    "max_error_message_chars": 4096,
    "stream_backlog": {
        "per_request_bytes": 16777216,
        "total_bytes": 67108864,
        "drain_timeout_ms": 30000,
    },
    "max_upload_bytes": 268435456,
    "max_download_bytes": 1073741824,
    "rich_results": {
        "max_results": 64,
        "max_image_bytes": 4194304,
        "max_text_chars": 2097152,
        "max_total_bytes": 12582912,
    },
    "egress": {
        "max_entries": 256,
        "max_entry_chars": 300,
        "max_name_chars": 253,
    },
    "services": {
        "max_services": 16,
        "max_timeout_secs": 1800,
        "poll_interval_ms": 100,
        "output_bytes": 65536,
        "error_output_chars": 8192,
    },
    "vary": {
        "max_names": 32,
        "max_name_chars": 64,
        "max_string_chars": 4096,
        "max_child_json_bytes": 65536,
    },
    "guest_fork": {
        "max_depth": 16,
        "socket_path": "/run/forkd/fork.sock",
        "max_request_bytes": 4194304,
        "default_wait_ms": 600000,
    },
}

#: Limits of the machines and of how many of them one request makes.
MACHINE_LIMITS: Dict[str, Any] = {
    "spawn_max": 1000,
    "fork_max": 100,
    "vcpus": {
        "min": 1,
        "max": 8,
    },
    "mem_mib": {
        "min": 128,
        "max": 65536,
    },
    "sandbox_timeout_ms": {
        "min": 1000,
        "max": 86400000,
    },
}

#: Timeouts (seconds) of REST calls that run something in a sandbox: the defaults and the cap.
CALL_TIMEOUT_SECS: Dict[str, int] = {
    "exec": 30,
    "eval": 60,
    "process_wait": 30,
    "diff": 600,
    "max": 3600,
}

#: The SDKs' own defaults (E2B's).
CLIENT_DEFAULTS: Dict[str, int] = {
    "sandbox_timeout_ms": 300000,
    "command_timeout_ms": 60000,
}

#: Every stable error code and its HTTP status.
ERROR_CODES: Dict[str, int] = {
    "FORKD_E_INVALID_ARGUMENT": 400,
    "FORKD_E_INVALID_TAG": 400,
    "FORKD_E_OUT_OF_RANGE": 400,
    "FORKD_E_RECIPE_INVALID": 400,
    "FORKD_E_MEMORY_TOO_SMALL": 400,
    "FORKD_E_COMMAND_FAILED": 400,
    "FORKD_E_HOST_NOT_ALLOWED": 400,
    "FORKD_E_TOKEN_FILE_INSECURE": 400,
    "FORKD_E_UNAUTHORIZED": 401,
    "FORKD_E_FORBIDDEN": 403,
    "FORKD_E_GUEST_FORK_DENIED": 403,
    "FORKD_E_GUEST_FORK_LIMIT": 403,
    "FORKD_E_NOT_FOUND": 404,
    "FORKD_E_SNAPSHOT_NOT_FOUND": 404,
    "FORKD_E_SANDBOX_NOT_FOUND": 404,
    "FORKD_E_RECIPE_NOT_FOUND": 404,
    "FORKD_E_FILE_NOT_FOUND": 404,
    "FORKD_E_WORKSPACE_NOT_FOUND": 404,
    "FORKD_E_JOB_NOT_FOUND": 404,
    "FORKD_E_CONFLICT": 409,
    "FORKD_E_SNAPSHOT_EXISTS": 409,
    "FORKD_E_SNAPSHOT_INCOMPATIBLE": 409,
    "FORKD_E_SANDBOX_NOT_RUNNING": 409,
    "FORKD_E_WORKSPACE_EXISTS": 409,
    "FORKD_E_HAS_DEPENDENTS": 409,
    "FORKD_E_IN_USE": 409,
    "FORKD_E_PAYLOAD_TOO_LARGE": 413,
    "FORKD_E_ARTIFACT_INVALID": 400,
    "FORKD_E_ARTIFACT_UNSAFE_PATH": 400,
    "FORKD_E_ARTIFACT_ENTRY_TYPE": 400,
    "FORKD_E_ARTIFACT_DUPLICATE": 400,
    "FORKD_E_ARTIFACT_TRUNCATED": 400,
    "FORKD_E_DIGEST_MISMATCH": 400,
    "FORKD_E_ARTIFACT_TOO_LARGE": 413,
    "FORKD_E_ARTIFACT_RATIO": 413,
    "FORKD_E_SIGNATURE_MISSING": 403,
    "FORKD_E_SIGNATURE_INVALID": 403,
    "FORKD_E_TRUST_POLICY_INVALID": 500,
    "FORKD_E_REGISTRY_AUTH": 502,
    "FORKD_E_REGISTRY_ERROR": 502,
    "FORKD_E_REF_NOT_FOUND": 404,
    "FORKD_E_RATE_LIMITED": 429,
    "FORKD_E_AGENT_BACKPRESSURE": 429,
    "FORKD_E_INTERNAL": 500,
    "FORKD_E_NOT_IMPLEMENTED": 501,
    "FORKD_E_KERNEL_NOT_FOUND": 503,
    "FORKD_E_QEMU_NOT_INSTALLED": 503,
    "FORKD_E_TOOL_MISSING": 503,
    "FORKD_E_ACCEL_UNAVAILABLE": 503,
    "FORKD_E_UNAVAILABLE": 503,
    "FORKD_E_CAPACITY": 503,
    "FORKD_E_QUOTA_UNAVAILABLE": 503,
    "FORKD_E_JAIL_UNAVAILABLE": 503,
    "FORKD_E_RUN_DIR_UNSAFE": 503,
    "FORKD_E_INSUFFICIENT_STORAGE": 507,
    "FORKD_E_TOOL_FAILED": 500,
    "FORKD_E_IMAGE_BUILD_FAILED": 500,
    "FORKD_E_VM_START_FAILED": 500,
    "FORKD_E_RESTORE_FAILED": 500,
    "FORKD_E_SNAPSHOT_FAILED": 500,
    "FORKD_E_SERVICE_NOT_READY": 500,
    "FORKD_E_SERVICE_EXITED": 500,
    "FORKD_E_AGENT_UNAVAILABLE": 502,
    "FORKD_E_AGENT_PROTOCOL": 502,
    "FORKD_E_AGENT_ERROR": 502,
    "FORKD_E_AGENT_TIMEOUT": 504,
    "FORKD_E_TIMEOUT": 504,
}
