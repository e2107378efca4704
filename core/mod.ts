/**
 * The public SDK of TelemetryHub. Plugins, built-in and third-party, import
 * only this module (and `core/testing.ts` in their tests).
 *
 * @module
 */
export {
  ALL_CAPABILITIES,
  BROKER_CAPABILITIES,
  type BrokerCapabilities,
  type BrokerCapability,
  type BrokerCore,
  type BrokerDepth,
  type BrokerInstance,
  type CapabilityMethods,
  checkCapabilities,
  type DeadLetter,
  type DeadLetterBrowsing,
  type DeadLetterPage,
  type DeadLetterSelector,
  type Delivery,
  hasCapability,
  type Settlement,
  SETTLEMENT_EVENT,
  type TaskRecords,
} from "./broker.ts";
export {
  brokerClosedError,
  checkReserveSize,
  checkSettlements,
  checkStarts,
  closeOnAbort,
  decodeDeadLetterCursor,
  encodeDeadLetterCursor,
  ownReceipt,
  PRIORITY_SCHEDULE,
  recordRetentionFields,
} from "./broker_kit.ts";
export {
  type Clock,
  settledOrAborted,
  sleepUnlessAborted,
  systemClock,
  untilAborted,
} from "./clock.ts";
export { backoffDelay, decideFailure, type FailureDecision, type RetryPolicy } from "./backoff.ts";
export { formatDuration, MAX_TIMER_MS, parseDuration } from "./duration.ts";
export {
  isSecretKey,
  isSecretParam,
  REDACTED,
  redactText,
  redactValue,
  urlPasswords,
} from "./redact.ts";
export {
  ANOMALY_RESOLVED_TOPIC,
  ANOMALY_TOPIC,
  type AnomalyEvent,
  type AnomalyResolvedEvent,
  createEventBus,
  type EventBus,
  SEVERITIES,
  type Severity,
} from "./events.ts";
export { globMatcher } from "./glob.ts";
export {
  ConfigError,
  type ConfigProblem,
  errorMessage,
  formatProblem,
  isPermanent,
  isUnavailable,
  PermanentError,
  PluginError,
  RetryableError,
  UnavailableError,
} from "./errors.ts";
export {
  createLogger,
  LOG_LEVELS,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  type LogSink,
  silentLogger,
} from "./log.ts";
export {
  type AnyPluginDefinition,
  defineBroker,
  defineDevice,
  defineHandler,
  definePlugin,
  type DeviceInstance,
  type DeviceIO,
  type EmitOptions,
  type HandlerContext,
  type HandlerInstance,
  type HandlerResult,
  type InstanceOf,
  type MetricLabels,
  type PluginContext,
  type PluginCounter,
  type PluginDefinition,
  type PluginGauge,
  type PluginHistogram,
  type PluginKind,
  type PluginMetrics,
  type SeriesAnswer,
  type SeriesPoint,
  type SeriesQuery,
} from "./plugin.ts";
export { gaussian, type Random, seededRandom, seedFrom } from "./random.ts";
export {
  admitSample,
  compactPayload,
  type DecodedPayload,
  decodeSamples,
  decodeTaskSamples,
  encodeSeries,
  isRecord,
  QUALITIES,
  type RefusedItem,
  type Sample,
  SAMPLE_LIMITS,
  type SampleInput,
  type SamplePayload,
  sampleProblem,
  SampleStamper,
  type Series,
  taskSampleSeq,
} from "./sample.ts";
export {
  duration,
  type DurationOptions,
  PRIORITIES,
  type Priority,
  priority,
  z,
} from "./schema.ts";
export {
  canTransition,
  IllegalTransitionError,
  newTaskId,
  type QuarantinedSample,
  type Task,
  TASK_EVENTS,
  TASK_STATES,
  type TaskError,
  type TaskEvent,
  type TaskRecord,
  type TaskState,
  transition,
} from "./task.ts";
