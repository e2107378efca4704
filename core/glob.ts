/**
 * Device and metric patterns: `*` matches any run of characters, `?` one
 * character; anything else matches itself.
 *
 * @module
 */

/**
 * Compiles a glob into a predicate.
 *
 * @example
 * ```ts
 * import { globMatcher } from "@telemetryhub/telemetryhub";
 * const boiler = globMatcher("boiler-?");
 * boiler("boiler-2"); // true
 * boiler("boiler-12"); // false
 * ```
 */
export function globMatcher(pattern: string): (name: string) => boolean {
  if (pattern === "*") return () => true;
  if (!/[*?]/.test(pattern)) return (name) => name === pattern;
  const source = pattern.replace(/[.+^${}()|[\]\\]/g, "\\$&").replaceAll("*", ".*")
    .replaceAll("?", ".");
  const re = new RegExp(`^${source}$`);
  return (name) => re.test(name);
}
