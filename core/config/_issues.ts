/**
 * Zod issues as configuration problems: sentence case, values quoted, what
 * was expected and what was found.
 *
 * @module
 */
import { isScalar, isSeq, type Node } from "yaml";
import type { z } from "../schema.ts";
import type { PathSegment } from "./_path.ts";
import { didYouMean, unknownKeyMessage } from "./suggest.ts";

/** A problem at a path, shown at its key or its value. */
export interface PathProblem {
  path: PathSegment[];
  message: string;
  target: "key" | "value";
}

/** Marks the message of an `unrecognized_keys` issue that carries the valid keys. */
const VALID_KEYS = "\u0000valid-keys:";

/** Options for `safeParse` that give every issue a message of ours. */
export const PARSE_OPTIONS = { reportInput: true, error: issueMessage } as const;

/**
 * Rewrites zod's default messages: sentence case, values quoted, what was
 * expected and what was found. Schema-level messages take precedence.
 */
function issueMessage(issue: z.core.$ZodRawIssue): string | undefined {
  const got = `, got ${describe(issue.input)}`;
  switch (issue.code) {
    case "invalid_type": {
      if (issue.input === undefined) return "Missing required key";
      return `Expected ${typeName(issue.expected, issue.inst)}${got}`;
    }
    case "invalid_value": {
      const values = issue.values;
      const hint = typeof issue.input === "string" && values.every((v) => typeof v === "string")
        ? didYouMean(issue.input, values as string[])
        : "";
      return values.length === 1
        ? `Expected ${literal(values[0])}${got}`
        : `Expected one of ${values.map(literal).join(", ")}${got}${hint}`;
    }
    case "invalid_union": {
      const branches = issue.errors.map((branch) => branch[0]);
      if (
        branches.length > 0 &&
        branches.every((b) => b?.code === "invalid_type" && b.path.length === 0)
      ) {
        const names = branches.map((b) => typeName((b as { expected: string }).expected));
        return `Expected ${[...new Set(names)].join(" or ")}${got}`;
      }
      return `Invalid value${got.replace(", got", "")}`;
    }
    case "too_small":
    case "too_big": {
      const small = issue.code === "too_small";
      const limit = small ? issue.minimum : issue.maximum;
      const inclusive = issue.inclusive !== false;
      if (issue.origin === "string") {
        if (small && Number(limit) === 1) return "Must not be empty";
        return `Must be ${small ? "at least" : "at most"} ${limit} characters long${got}`;
      }
      if (issue.origin === "array" || issue.origin === "set") {
        return `Must have ${small ? "at least" : "at most"} ${limit} item${
          Number(limit) === 1 ? "" : "s"
        }, got ${Array.isArray(issue.input) ? issue.input.length : "more"}`;
      }
      const bound = small
        ? (inclusive ? "at least" : "greater than")
        : (inclusive ? "at most" : "less than");
      return `Must be ${bound} ${limit}${got}`;
    }
    case "not_multiple_of":
      return `Must be a multiple of ${issue.divisor}${got}`;
    case "invalid_format":
      return issue.format === "regex"
        ? `Must match the pattern ${issue.pattern}${got}`
        : `Expected a valid ${issue.format}${got}`;
    case "unrecognized_keys": {
      const shape = (issue.inst as { _zod?: { def?: { shape?: object } } } | undefined)?._zod
        ?.def?.shape;
      return VALID_KEYS + JSON.stringify(shape ? Object.keys(shape) : []);
    }
    default:
      return undefined;
  }
}

/** The problems of zod issues, their paths under `base`. */
export function issueProblems(
  issues: readonly z.core.$ZodIssue[],
  base: PathSegment[],
): PathProblem[] {
  const problems: PathProblem[] = [];
  for (const issue of issues) {
    const path = [...base, ...issue.path.map((s) => typeof s === "number" ? s : String(s))];
    switch (issue.code) {
      case "unrecognized_keys": {
        const valid = issue.message.startsWith(VALID_KEYS)
          ? JSON.parse(issue.message.slice(VALID_KEYS.length)) as string[]
          : [];
        for (const key of issue.keys) {
          problems.push({
            path: [...path, key],
            message: unknownKeyMessage(key, valid),
            target: "key",
          });
        }
        break;
      }
      case "invalid_key": {
        const name = path.at(-1);
        const reason = issue.issues[0]?.message ?? "invalid name";
        problems.push({
          path,
          message: `Invalid name ${JSON.stringify(String(name))}: ${lowerFirst(reason)}`,
          target: "key",
        });
        break;
      }
      case "invalid_type":
        if ((issue as { input?: unknown }).input === undefined && path.length > 0) {
          const key = path.at(-1)!;
          problems.push({
            path: path.slice(0, -1),
            message: `Missing required key ${JSON.stringify(String(key))}`,
            target: "key",
          });
          break;
        }
        problems.push({ path, message: issue.message, target: "value" });
        break;
      default: {
        let message = issue.message;
        const input = (issue as { input?: unknown }).input;
        // Schema-level messages ("Expected a duration such as ...") gain the value found.
        if (
          /^Expected\b/.test(message) && !/, got /.test(message) &&
          ["string", "number", "boolean"].includes(typeof input)
        ) {
          message += `, got ${describe(input)}`;
        }
        problems.push({ path, message, target: "value" });
      }
    }
  }
  return problems;
}

function typeName(expected: string, inst?: unknown): string {
  const format = (inst as { _zod?: { def?: { format?: string } } } | undefined)?._zod?.def
    ?.format;
  if (expected === "number" && format && /int/.test(format)) return "an integer";
  switch (expected) {
    case "string":
      return "a string";
    case "number":
      return "a number";
    case "int":
      return "an integer";
    case "boolean":
      return "true or false";
    case "array":
    case "tuple":
      return "a list";
    case "object":
    case "record":
    case "map":
      return "a mapping";
    case "null":
      return "an empty value";
    default:
      return /^[aeiou]/.test(expected) ? `an ${expected}` : `a ${expected}`;
  }
}

/** How a found value reads in a message. */
export function describe(value: unknown): string {
  if (value === null) return "an empty value";
  if (value === undefined) return "nothing";
  if (Array.isArray(value)) return "a list";
  if (typeof value === "object") return "a mapping";
  if (typeof value === "string") {
    return JSON.stringify(value.length > 60 ? `${value.slice(0, 57)}...` : value);
  }
  return String(value);
}

function literal(value: unknown): string {
  return typeof value === "string" ? JSON.stringify(value) : String(value);
}

/** How a YAML node that is not a mapping reads in a message. */
export function describeNode(node: Node): string {
  if (isSeq(node)) return "a list";
  if (isScalar(node)) return `the value ${describe(node.value)}`;
  return "something else";
}

function lowerFirst(text: string): string {
  return /^[A-Z][a-z]/.test(text) ? text.charAt(0).toLowerCase() + text.slice(1) : text;
}
