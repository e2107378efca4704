/**
 * The `config:` block of a `type: sqlite` broker: the single source of its
 * types, defaults, validation and README table.
 *
 * @module
 */
import { duration, recordRetentionFields, z } from "../../core/mod.ts";

/** The `config:` block of a `type: sqlite` broker. */
export const sqliteBrokerConfig = z.strictObject({
  path: z.string().min(1).default("./data/broker.db").describe(
    "Database file; a relative path is relative to the directory the process started in " +
      "(where `deno task run` may write ./data), wherever the configuration file is; its " +
      "folder is created " +
      "when missing. Every process that shares the queue names the same file on the same " +
      "machine (a local disk: network file systems such as NFS or SMB do not work)",
  ),
  synchronous: z.enum(["full", "normal"]).default("full").describe(
    "When enqueue() resolves: `full` after the tasks are fsynced to the write-ahead log, so " +
      "they survive a crash of the process and of the machine (power cut); `normal` after " +
      "they are written to the log without fsync, so they survive a crash or kill of the " +
      "process but the last transactions can be lost on a power cut or kernel crash",
  ),
  capacity: z.int().min(1).default(10_000).describe(
    "Most tasks waiting in the queue (all processes together). When full, enqueue() waits " +
      "for room, which slows the gateway down and fills the hub queue (backpressure: HTTP " +
      "503, MQTT unacknowledged, devices blocked) instead of filling the disk. Retries, " +
      "releases and replays are always accepted. 10,000 tasks of 1,000 samples is about 200 MB",
  ),
  ...recordRetentionFields,
  lease: duration({ timer: true }).prefault("5s").describe(
    "How long a process's reserved tasks stay its own without a heartbeat; the tasks of a " +
      "process that died are requeued this long after its last heartbeat, or at once when " +
      "another process on the same machine sees that its process id is gone",
  ),
  recover_interval: duration({ timer: true }).prefault("1s").describe(
    "How often each process looks for expired leases and dead processes and requeues their " +
      "tasks",
  ),
  poll_interval: duration({ timer: true }).prefault("10ms").describe(
    "How often an idle consumer checks whether another process changed the file (a cheap " +
      "version read); tasks enqueued in the same process wake it at once",
  ),
  busy_timeout: duration({ timer: true }).prefault("5s").describe(
    "How long a write waits for another process holding the file's write lock before it " +
      "fails (and is retried by its caller)",
  ),
});

/** Validated options of the SQLite broker (the parsed `config:` block). */
export type SqliteBrokerOptions = z.output<typeof sqliteBrokerConfig>;
