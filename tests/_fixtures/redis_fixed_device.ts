/**
 * The `fixed` test device as a module of its own, for `plugins:` lists in
 * configuration files run by the CLI.
 *
 * @module
 */
export { fixedDevice as default } from "./plugins.ts";
