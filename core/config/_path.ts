/**
 * Paths in the configuration document and how messages show them.
 *
 * @module
 */
/** A segment of a path in the document: a mapping key or a list index. */
export type PathSegment = string | number;

/**
 * Formats a path: dotted keys, `[i]` for list items, `["a.b"]` for keys
 * that are not plain names.
 *
 * @example
 * ```ts
 * import { formatPath } from "./load.ts";
 * formatPath(["pipelines", "main", "from", 1]); // "pipelines.main.from[1]"
 * ```
 */
export function formatPath(path: readonly PathSegment[]): string {
  let out = "";
  for (const segment of path) {
    if (typeof segment === "number") out += `[${segment}]`;
    else if (/^[A-Za-z0-9_-]+$/.test(segment)) out += out ? `.${segment}` : segment;
    else out += `[${JSON.stringify(segment)}]`;
  }
  return out;
}
