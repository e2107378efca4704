/**
 * Positions of configuration problems, looked up in the YAML document, and
 * walks over its nodes.
 *
 * @module
 */
import {
  type Alias,
  type Document,
  isAlias,
  isMap,
  isPair,
  isScalar,
  isSeq,
  type LineCounter,
  type Node,
  type Pair,
  type Scalar,
  type YAMLError,
} from "yaml";
import { ConfigError, type ConfigProblem } from "../errors.ts";
import { isSecretVariable } from "./interpolate.ts";
import { describe } from "./_issues.ts";
import { formatPath, type PathSegment } from "./_path.ts";

/**
 * Environment values shorter than this are only hidden where they are the
 * value in question, unless their variable's name looks secret: a short
 * common word (`processor`, `info`) would otherwise vanish from messages.
 */
const MIN_HIDDEN_ENV_VALUE = 12;

/** Collects problems with positions looked up in the YAML document. */
export class Reporter {
  readonly problems: ConfigProblem[] = [];
  readonly #warnings: ConfigProblem[] = [];
  readonly #file: string;
  readonly #doc: Document;
  readonly #lines: LineCounter;
  #fromEnv = new Map<string, { source: string; value: unknown }>();
  #envValues: [string, string][] = [];

  constructor(file: string, doc: Document, lines: LineCounter) {
    this.#file = file;
    this.#doc = doc;
    this.#lines = lines;
  }

  /** A problem at `path`: at its value, or its key; at the nearest ancestor if missing. */
  add(path: readonly PathSegment[], message: string, target: "key" | "value" = "value"): void {
    this.problems.push(this.#problem(this.#offset(path, target), path, message));
  }

  /** A problem at a character offset (YAML syntax errors). */
  at(offset: number, path: readonly PathSegment[], message: string): void {
    this.problems.push(this.#problem(offset, path, message));
  }

  warn(path: readonly PathSegment[], message: string, target: "key" | "value" = "value"): void {
    this.#warnings.push(this.#problem(this.#offset(path, target), path, message));
  }

  warnAt(offset: number, path: readonly PathSegment[], message: string): void {
    this.#warnings.push(this.#problem(offset, path, message));
  }

  /**
   * From now on, a message about a value that came from the environment
   * quotes the reference (`"\${DATABASE_URL}"`) instead of the value, and
   * environment values elsewhere in a message are replaced by their
   * variable's reference.
   */
  hideEnvironment(
    fromEnv: Map<string, { source: string; value: unknown }>,
    envValues: Map<string, string>,
  ): void {
    this.#fromEnv = fromEnv;
    this.#envValues = [...envValues].filter(([value, name]) =>
      value.length >= (isSecretVariable(name) ? 3 : MIN_HIDDEN_ENV_VALUE)
    )
      .sort((a, b) => b[0].length - a[0].length);
  }

  #hide(path: readonly PathSegment[], message: string): string {
    let out = message;
    const here = this.#fromEnv.get(JSON.stringify(path));
    if (here) {
      // `${NAME}` alone (with or without a default) reads as "the value of ${NAME}".
      const single = /^\$\{([A-Za-z_][A-Za-z0-9_]*)(?::[-?][^}]*)?\}$/.exec(here.source);
      const source = single ? `the value of \${${single[1]}}` : JSON.stringify(here.source);
      if (typeof here.value === "string") {
        for (const shown of new Set([describe(here.value), JSON.stringify(here.value)])) {
          out = out.split(shown).join(source);
        }
      } else {
        // A number or boolean is only replaced where it is quoted as found, not in "at least 10".
        out = out.split(`got ${describe(here.value)}`).join(`got ${source}`);
      }
    }
    for (const [value, name] of this.#envValues) out = out.split(value).join(`\${${name}}`);
    return out;
  }

  error(): ConfigError {
    return new ConfigError(sortProblems(this.problems));
  }

  sortedWarnings(): ConfigProblem[] {
    return sortProblems(this.#warnings);
  }

  #problem(offset: number | undefined, path: readonly PathSegment[], message: string) {
    const { line, col } = offset === undefined ? { line: 0, col: 0 } : this.#lines.linePos(offset);
    return {
      file: this.#file,
      line,
      col,
      path: formatPath(path),
      message: this.#hide(path, message),
    };
  }

  /** Offset of the node at `path`, falling back to the key of the nearest existing ancestor. */
  #offset(path: readonly PathSegment[], target: "key" | "value"): number | undefined {
    let node: unknown = this.#doc.contents;
    let pair: Pair | undefined;
    let found = 0;
    for (const segment of path) {
      if (isAlias(node)) node = node.resolve(this.#doc);
      if (isMap(node)) {
        const next = node.items.find((p) => keyText(p) === String(segment));
        if (!next) break;
        pair = next;
        node = next.value;
      } else if (isSeq(node) && typeof segment === "number" && segment < node.items.length) {
        pair = undefined;
        node = node.items[segment];
      } else {
        break;
      }
      found++;
    }
    const complete = found === path.length;
    const keyOffset = pair && isNodeLike(pair.key) ? pair.key.range?.[0] : undefined;
    if (pair && (target === "key" || !complete) && keyOffset !== undefined) return keyOffset;
    if (isNodeLike(node) && node.range) return node.range[0];
    if (keyOffset !== undefined) return keyOffset;
    return (this.#doc.contents as Node | null)?.range?.[0] ?? 0;
  }
}

export function sortProblems(problems: readonly ConfigProblem[]): ConfigProblem[] {
  return [...problems].sort((a, b) => a.line - b.line || a.col - b.col);
}

export function keyText(pair: Pair): string {
  const key = pair.key;
  if (isScalar(key)) return String(key.value);
  return String(key);
}

export function isNodeLike(value: unknown): value is Node {
  return typeof value === "object" && value !== null && "range" in value;
}

/** yaml's messages without the code frame and final period. */
export function yamlMessage(message: string): string {
  const first = message.split("\n")[0]!.replace(/ at line \d+, column \d+:?$/, "").trim();
  return first.replace(/\.$/, "");
}

/**
 * Visits every scalar and alias in value position (never keys), with its
 * path. An alias is not followed: its anchor is visited where it is defined.
 */
export function walkScalars(
  node: unknown,
  path: PathSegment[],
  visit: (node: Scalar | Alias, path: PathSegment[]) => void,
): void {
  if (isScalar(node) || isAlias(node)) visit(node, path);
  else if (isMap(node)) {
    for (const pair of node.items) {
      if (isPair(pair)) walkScalars(pair.value, [...path, keyText(pair)], visit);
    }
  } else if (isSeq(node)) {
    node.items.forEach((item, i) => walkScalars(item, [...path, i], visit));
  }
}

/**
 * Where to show a syntax error. yaml reports some errors where it noticed
 * them: at the indentation before a misplaced key (moved to the key), or at
 * the end of the file for an unclosed quote (moved to the opening quote).
 */
export function syntaxErrorOffset(text: string, error: YAMLError): number {
  let offset = error.pos[0];
  const quote = /^Missing closing (["'])quote/.exec(error.message)?.[1];
  if (quote) {
    // Inside the unclosed scalar every quote is escaped (\" or ''), so the
    // opening quote is the last unescaped one before the error.
    for (let i = Math.min(offset, text.length) - 1; i >= 0; i--) {
      if (text[i] !== quote) continue;
      if (quote === '"' && text[i - 1] !== "\\") return i;
      if (quote === "'") {
        let run = 1;
        while (text[i - run] === "'") run++;
        if (run % 2 === 1) return i - run + 1;
        i -= run - 1;
      }
    }
    return offset;
  }
  while (text[offset] === " " || text[offset] === "\t") offset++;
  return offset;
}
