/**
 * Every limit and default forkd has, declared once. The agent, the REST schemas, the engine's
 * checks, the SDKs (the Python one through a generated table) and the CLI all read them from here.
 */

/** Limits of the agent protocol and of what one call may carry. */
export const LIMITS = {
  /** One frame on the agent channel: bounds what either side buffers for one message. */
  maxFrameBytes: 16 * 1024 * 1024,
  /**
   * Header of one frame the guest sends, for every method: bulk results (collected output,
   * listings, eval values) travel in the frame's payload (result-frame.ts).
   */
  maxFrameHeaderBytes: 64 * 1024,
  /**
   * Frames still arriving: each connection holds at most one (one buffer of its declared size),
   * all connections of a process together at most totalBytes; one not completed within
   * timeoutMs closes its connection.
   */
  partialFrames: { totalBytes: 256 * 1024 * 1024, timeoutMs: 60_000 },
  /**
   * Host→guest bytes queued on one agent connection (the guest reads its port slower than the
   * host writes, or not at all): new calls are refused above maxQueuedBytes, and a queue that
   * has not drained within stallTimeoutMs closes the connection (its bytes are freed).
   */
  agentWrites: { maxQueuedBytes: 8 * 1024 * 1024, stallTimeoutMs: 30_000 },
  /** Largest payload for one files.read / files.write call; larger files go in several calls. */
  maxFileChunkBytes: 4 * 1024 * 1024,
  /** Default and maximum of collected (non-streamed) output per stream of one exec. */
  defaultOutputBytes: 1024 * 1024,
  maxOutputBytes: 8 * 1024 * 1024,
  /** Output kept per stream for a background process (ring buffer, newest bytes). */
  backgroundOutputBytes: 1024 * 1024,
  /** Streamed output is sent in chunks of at most this size. */
  streamChunkBytes: 64 * 1024,
  /**
   * One NDJSON line of a streamed exec as clients read it (a chunk JSON-escaped fits many times
   * over); a longer one is an error, so a client never buffers an endless line.
   */
  maxStreamLineBytes: 1024 * 1024,
  /** Longest guest-side timeout of one command or background process: a day. */
  maxExecTimeoutMs: 24 * 60 * 60 * 1000,
  /** The guest's own timeouts when the host names none. */
  defaultExecTimeoutMs: 60_000,
  defaultEvalTimeoutMs: 60_000,
  /** Code, shell command lines and warm-up scripts: large enough for generated code, bounded. */
  maxCodeBytes: 4 * 1024 * 1024,
  /** One argv element and the number of elements (as Linux's MAX_ARG_STRLEN allows). */
  maxArgBytes: 128 * 1024,
  maxArgs: 4096,
  /** Fresh entropy a restored child is given (the kernel pool needs far less). */
  maxEntropyBytes: 4096,
  /** Host entropy sent with each restore: a 32-byte slice for every generator the agent reseeds. */
  restoreEntropyBytes: 192,
  /** Background processes one agent tracks: each holds output buffers. */
  maxBackgroundProcesses: 256,
  /** Entries one files.list returns (the rest is reported as truncated). */
  maxListEntries: 10_000,
  /** Levels one files.list descends. */
  maxListDepth: 16,
  /** Environment maps (a sandbox's, one call's): bounded so a map fits comfortably in one frame. */
  env: { maxVars: 256, maxNameChars: 256, maxValueChars: 32 * 1024 },
  /** Metadata labels on a sandbox or workspace: small, they are listed and journaled with it. */
  metadata: { maxKeys: 64, maxKeyChars: 128, maxValueChars: 1024 },
  /**
   * Nesting of an eval's JSON value passed on to callers; a deeper one is reported as not
   * serialisable (json_ok false, repr kept): serialisers recurse, and the guest chooses the depth.
   */
  maxResultJsonDepth: 256,
  /** A guest's error message as callers, logs and job records see it (the rest is cut). */
  maxErrorMessageChars: 4096,
  /**
   * Streamed exec output the daemon holds for clients that read slower than the guest writes:
   * per request and across all requests; a stream whose backlog has not drained within
   * drainTimeoutMs, or that finds no room, is cut (its call ended, its connection closed).
   */
  streamBacklog: { perRequestBytes: 16 * 1024 * 1024, totalBytes: 64 * 1024 * 1024, drainTimeoutMs: 30_000 },
  /** Streamed file transfers through the daemon. */
  maxUploadBytes: 256 * 1024 * 1024,
  maxDownloadBytes: 1024 * 1024 * 1024,
  /**
   * run_code's rich results (IPython display data: plots, HTML, ...). An image (PNG/JPEG) bigger
   * than maxImageBytes, a text format (html, svg, ...) longer than maxTextChars, or anything past
   * maxTotalBytes for the whole call is dropped and named in the reply's `dropped` list, never
   * truncated into an invalid file. maxTotalBytes keeps one reply inside one agent frame.
   */
  richResults: { maxResults: 64, maxImageBytes: 4 * 1024 * 1024, maxTextChars: 2 * 1024 * 1024, maxTotalBytes: 12 * 1024 * 1024 },
  /** A sandbox's egress policy: entries per list (each becomes an nft rule or a proxy name rule), one entry's length, a DNS name. */
  egress: { maxEntries: 256, maxEntryChars: 300, maxNameChars: 253 },
  /**
   * Recipe services (long-running processes started in the parent before the snapshot): how many,
   * how long one may take to become ready, how often its ready check is polled, and how much of
   * its own output is kept for the error when it never gets ready (the newest bytes).
   */
  services: { maxServices: 16, maxTimeoutSecs: 1800, pollIntervalMs: 100, outputBytes: 64 * 1024, errorOutputChars: 8192 },
  /**
   * Fork with variations (issue 10): each child's named values (environment variables, interpreter
   * globals). Names per child, one name's length, a string value's length, and one child's values
   * as JSON (they travel in one agent frame and are journaled with the fork).
   */
  vary: { maxNames: 32, maxNameChars: 64, maxStringChars: 4096, maxChildJsonBytes: 64 * 1024 },
  /**
   * A guest's own fork (forkd.fork() inside the VM): the deepest lineage allow_guest_fork may
   * permit, the guest socket the library talks to, one request line's size, and how long the
   * guest library waits for the host by default.
   */
  guestFork: { maxDepth: 16, socketPath: '/run/forkd/fork.sock', maxRequestBytes: 4 * 1024 * 1024, defaultWaitMs: 10 * 60 * 1000 },
} as const;

/** Limits of the machines and of how many of them one request makes. */
export const MACHINE_LIMITS = {
  /** Children per spawn request: bounds one call's work and reply (the daemon's own caps may be lower). */
  spawnMax: 1000,
  /** Children per fork call: each one restores the branch just taken, so fewer than a spawn. */
  forkMax: 100,
  /** vCPUs of a snapshot's machine: the range microvm snapshots are tested with. */
  vcpus: { min: 1, max: 8 },
  /** Guest memory (MiB) of a snapshot: below 128 no runtime warms up; above 64 GiB is a typo. */
  memMib: { min: 128, max: 65536 },
  /** A sandbox's lifetime: at least a second (anything less ends before it is used), at most a day. */
  sandboxTimeoutMs: { min: 1000, max: 24 * 60 * 60 * 1000 },
} as const;

/**
 * Per-sandbox resource limits (issue 14 §5): the range of each, as a spawn may ask for it and as
 * an operator may set defaults and maxima. Applied through a cgroup per child (v1 or v2) and, for
 * the disk, the QEMU process's file-size limit on its overlay.
 */
export const QUOTA_LIMITS = {
  /** The QEMU process's memory (guest pages it copied, QEMU's own heap and code cache, page cache it charged), MiB. Below 64 no child restores. */
  memoryLimitMib: { min: 64, max: 1024 * 1024 },
  /** Relative CPU share (cgroup v2 cpu.weight; v1 cpu.shares = weight * 1024 / 100). 100 is everyone's default. */
  cpuWeight: { min: 1, max: 10000 },
  /** Hard CPU cap in cores (0.5 = half of one core), across all of QEMU's threads. */
  cpuQuota: { min: 0.01, max: 256 },
  /** Tasks (threads) of the QEMU process: guest processes are not host tasks; this bounds QEMU's own threads. */
  pidsMax: { min: 8, max: 65536 },
  /** The child's disk overlay (copy-on-write changes on the snapshot's disk), MiB. */
  diskLimitMib: { min: 16, max: 1024 * 1024 },
  /** Disk I/O bandwidth of the QEMU process, bytes per second, read and write separately. */
  ioBps: { min: 1024 * 1024, max: 1024 ** 4 },
} as const;

/** Timeouts (seconds) of REST calls that run something in a sandbox: the defaults and the cap. */
export const CALL_TIMEOUT_SECS = {
  /** exec: most commands an agent runs are short; a stuck one should not hold a call long. */
  exec: 30,
  /** eval: the persistent interpreter's calls (imports, model steps) often take longer. */
  eval: 60,
  /** Waiting for a background process, per call (callers wait again). */
  processWait: 30,
  /** The command of a snapshot diff (installs packages, so minutes). */
  diff: 600,
  /** No single call runs longer than an hour (long work belongs in a background process). */
  max: 3600,
} as const;

/** The SDKs' own defaults: E2B's, which both SDKs keep so code written for E2B behaves the same. */
export const CLIENT_DEFAULTS = {
  /** A sandbox lives five minutes unless told otherwise. */
  sandboxTimeoutMs: 300_000,
  /** A command runs a minute unless told otherwise. */
  commandTimeoutMs: 60_000,
} as const;

/** Bearer tokens and failed authentication. */
export const AUTH_LIMITS = {
  /** A token's length (bytes) and variety: `aaaaaaaaaaaaaaaa` is refused at start. */
  minTokenBytes: 16,
  minTokenDistinctChars: 8,
  /**
   * Failed authentications one peer address may make per window; past that every request from it
   * carrying credentials is answered 429 until the window ends (its tokens are not even checked).
   */
  failures: { perWindow: 20, windowMs: 60_000 },
} as const;

/**
 * Snapshots as OCI artifacts (push, pull, pack, unpack): what forkd accepts from a registry or a
 * pack before anything is written, and how it uploads. Sizes an artifact declares are checked
 * against these before a byte is downloaded; the bytes that arrive are counted against the declared ones.
 */
export const OCI_LIMITS = {
  /** An image manifest or index document. */
  maxManifestBytes: 4 * 1024 * 1024,
  /** The snapshot config blob (the snapshot manifest and the image record). */
  maxConfigBytes: 1024 * 1024,
  /** Links of one chain a pull or unpack walks. */
  maxChainDepth: 64,
  /** One file of a snapshot or image once decompressed (declared and counted). */
  maxFileBytes: 64 * 1024 * 1024 * 1024,
  /** Everything one pull or unpack writes, decompressed. */
  maxTotalBytes: 256 * 1024 * 1024 * 1024,
  /**
   * Non-zero bytes written per compressed byte read. Runs of zero pages are written as holes and
   * cost nothing, so this only bounds data a bomb would really put on disk.
   */
  maxDecompressionRatio: 200,
  /** Entries in a pack's tar. */
  maxPackEntries: 4096,
  /** Uploads larger than this go in chunks (POST, PATCH..., PUT) of this size. */
  uploadChunkBytes: 64 * 1024 * 1024,
  /** Signature artifacts a pull looks at for one manifest (more are ignored: a registry could list thousands). */
  maxSignatures: 32,
  /** One signature blob (a small JSON document). */
  maxSignatureBytes: 64 * 1024,
  /** A hub index (registry.json) read from a file or URL. */
  maxHubIndexBytes: 4 * 1024 * 1024,
  /** The trust policy file. */
  maxTrustPolicyBytes: 1024 * 1024,
  /** zstd level for blobs: fast enough to stay under the pack/push time budget on 2 cores. */
  zstdLevel: 3,
} as const;
